"""Float vs int8 (``auroradask.quantize_model``): frames/s per core and label agreement.

Models: the bundled demo model; the benchmarks' ResNet-50-sized CNN with random weights
(:func:`tests.support.models.build_resnet50`), whose labels hardly vary, so agreement on it
says little; and the same network with its last layer fitted (ridge regression on its
2048 pooled features) to synthetic frames of the four classes, so that its labels vary and
its decision margins are those of a classifier, not of noise.

Frames (all through the themis-pa preset):

- calibration: the first 40 real frames of the bundled sample (06:00-06:02 UT) and 40
  synthetic frames (10 of each kind, their own seed);
- held out, never used for calibration or fitting: the other 80 real frames (06:02-06:06
  UT) and 120 synthetic frames (30 of each kind: arcs, pulsating patches, clouds and moon,
  clear sky, made by ``examples/train_demo_model.sky`` with another seed).

Frames/s are per core (one onnxruntime thread), model only, on all 200 held-out frames,
float and int8 runs alternating in the same process, best of ``--repeats``. Run::

    python -m benchmarks.quantize --repeats 3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import auroradask
from auroradask.models import _compare
from auroradask.models._model import load_model, predict
from tests.support.models import build_resnet50

SEEDS = {"fit": 1, "calibration": 2, "held_out": 3}


def synthetic(per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed synthetic frames and their classes, ``per_class`` of each kind."""
    path = Path(__file__).parents[1] / "examples" / "train_demo_model.py"
    spec = importlib.util.spec_from_file_location("train_demo_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dataset(per_class, seed)


def fit_head(path: str, out: str, per_class: int) -> None:
    """Write ``path`` to ``out`` with its final Gemm refitted (ridge regression to one-hot
    classes) on ``per_class`` synthetic frames of each kind (their own seed)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.load(path)
    (flatten,) = [n for n in model.graph.node if n.op_type == "Flatten"]
    (gemm,) = [n for n in model.graph.node if n.op_type == "Gemm"]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(onnx.helper.make_tensor_value_info(flatten.output[0], 1, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    x, y = synthetic(per_class, SEEDS["fit"])
    features = np.concatenate(
        [
            session.run([flatten.output[0]], {"image": x[i : i + 16]})[0]
            for i in range(0, len(x), 16)
        ]
    )
    targets = np.eye(4, dtype=np.float64)[y]
    mean_f, mean_t = features.mean(0), targets.mean(0)
    centred = (features - mean_f).astype(np.float64)
    gram = centred.T @ centred
    ridge = 1e-2 * np.trace(gram) / len(gram)
    weights = np.linalg.solve(gram + ridge * np.eye(len(gram)), centred.T @ (targets - mean_t))
    bias = mean_t - mean_f @ weights
    scale = 10.0  # one-hot targets → logits a few units apart: confident, not saturated
    initializers = {i.name: i for i in model.graph.initializer}
    initializers[gemm.input[1]].CopyFrom(
        numpy_helper.from_array((weights * scale).astype(np.float32), gemm.input[1])
    )
    initializers[gemm.input[2]].CopyFrom(
        numpy_helper.from_array((bias * scale).astype(np.float32), gemm.input[2])
    )
    card = [p for p in model.metadata_props if p.key == "auroradask.card"]
    onnx.save(model, out)
    if card:
        auroradask.write_model_card(
            out,
            {
                **json.loads(card[0].value),
                "description": "ResNet-50-sized CNN, random convolutions, last layer fitted "
                "to synthetic frames; for benchmarks only.",
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,resnet50-random,resnet50-fitted")
    parser.add_argument("--fit", type=int, default=50, help="fitting frames per class")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs, best kept")
    args = parser.parse_args()
    real = _compare.model_inputs(None, "themis-pa")
    calib_synthetic, _ = synthetic(10, SEEDS["calibration"])
    held_synthetic, truth = synthetic(30, SEEDS["held_out"])
    calibration = np.concatenate([real[:40], calib_synthetic])
    held = np.concatenate([real[40:], held_synthetic])
    parts = {"real, held out": slice(0, 80), "synthetic, held out": slice(80, None)}
    rows = []
    with tempfile.TemporaryDirectory() as work:
        random_path = build_resnet50(os.path.join(work, "resnet50-random.onnx"))
        models = {"demo": auroradask.demo_model(), "resnet50-random": random_path}
        if "resnet50-fitted" in args.models:
            fitted = os.path.join(work, "resnet50-fitted.onnx")
            fit_head(random_path, fitted, args.fit)
            models["resnet50-fitted"] = fitted
        for name in args.models.split(","):
            started = time.perf_counter()
            out = os.path.join(work, f"{name}-int8.onnx")
            report = auroradask.quantize_model(
                models[name],
                out,
                calibration=calibration,
                calibration_frames=len(calibration),
                evaluation=held,
                repeats=args.repeats,
            )
            print(report.summary(), f"({time.perf_counter() - started:.0f} s)", flush=True)
            a, b = (predict(load_model(p), held) for p in (models[name], out))
            for kind, part in parts.items():
                found = _compare.Agreement.between(a[part], b[part])
                counts = np.bincount(a[part].argmax(1), minlength=4).tolist()
                accuracy = (
                    f"{(a[part].argmax(1) == truth).mean():.0%}" if kind.startswith("syn") else "–"
                )
                rows.append((name, kind, found, counts, accuracy))
            rows.append((name, "all", report.agreement, None, report))
    print()
    print(
        "| model | held-out frames | n | label agreement | largest Δp | float labels "
        "(bad/no/other/pulsating) | float accuracy | float → int8 frames/s/core | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, kind, found, counts, extra in rows:
        if kind == "all":
            report = extra
            speed = (
                f"{report.float_frames_per_second:.1f} → {report.int8_frames_per_second:.1f} | "
                f"**{report.speed_ratio:.2f}×**"
            )
            labels, accuracy = "", ""
        else:
            speed, labels, accuracy = "| ", "/".join(map(str, counts)), extra
        print(
            f"| {name} | {kind} | {found.frames} | {found.label_agreement:.1%} | "
            f"{found.max_probability_difference:.4f} | {labels} | {accuracy} | {speed} |"
        )


if __name__ == "__main__":
    main()
