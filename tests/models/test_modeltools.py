"""Bring your own model: convert (PyTorch, Keras), check, quantise — on the real sample.

The PyTorch tests need the ``torch`` extra and the Keras test the ``tensorflow`` extra; they
are skipped where those are not installed (the core install has neither).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import auroradask
from auroradask.cli.main import main
from auroradask.errors import ArgumentError
from auroradask.models import _compare, _convert
from auroradask.models._model import file_sha256
from tests.support.utils import CLASSES, open_sample


def require(name: str):
    """Import a conversion framework, or skip: the newest CI environment has none of them.
    In CI's "frameworks" environment (``AURORADASK_REQUIRE_FRAMEWORKS=1``) absence fails."""
    if os.environ.get("AURORADASK_REQUIRE_FRAMEWORKS") == "1":
        import importlib

        return importlib.import_module(name)
    return pytest.importorskip(name)


@pytest.fixture(scope="module")
def sample_input():
    """The sample's 120 frames as the themis-pa preset makes them, (n, 224, 224, 3)."""
    return _compare.model_inputs(None, "themis-pa")


def _ort(path, inputs, layout="NHWC"):
    """Outputs of an ONNX file run directly with onnxruntime, no auroradask in between."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batch = inputs.transpose(0, 3, 1, 2) if layout == "NCHW" else inputs
    return np.concatenate(
        [session.run(None, {name: batch[i : i + 16]})[0] for i in range(0, len(batch), 16)]
    )


# ----------------------------------------------------------------------------- PyTorch

TINY_TORCH = '''
import torch
from torch import nn


class Tiny(nn.Module):
    """NCHW float 0..255 in; a convolution, batch norm, pooling, a linear layer."""

    def __init__(self, branch=False, softmax=True):
        super().__init__()
        torch.manual_seed(0)
        self.pool = nn.AvgPool2d(8)
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.head = nn.Linear(16, 4)
        self.branch, self.softmax = branch, softmax
        with torch.no_grad():  # running statistics that are not the identity
            self.norm.running_mean.uniform_(-0.2, 0.2)
            self.norm.running_var.uniform_(0.5, 2.0)

    def forward(self, image):
        x = torch.relu(self.norm(self.conv(self.pool(image) / 255.0)))
        x = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        x = self.head(x)
        if self.branch and image.mean() > 1.0:  # data-dependent: tracing keeps one branch
            x = x * 3.0
        return torch.softmax(x, dim=1) if self.softmax else x


def build():
    return Tiny()


def build_logits():
    return Tiny(softmax=False)


def build_branchy():
    return Tiny(branch=True)
'''


@pytest.fixture
def torch_source(tmp_path):
    """A Python file building the tiny CNN: the ``file.py:callable`` form of a source."""
    require("torch")
    path = tmp_path / "tiny_torch.py"
    path.write_text(textwrap.dedent(TINY_TORCH))
    return path


def _torch_probabilities(module, inputs):
    import torch

    module.eval()
    with torch.no_grad():
        return module(torch.from_numpy(inputs.transpose(0, 3, 1, 2).copy())).numpy()


def test_convert_a_pytorch_cnn_and_classify_with_it(tmp_path, torch_source, sample_input):
    out = tmp_path / "tiny.onnx"
    report = auroradask.convert_model(
        f"{torch_source}:build", out, classes=CLASSES, preset="themis-pa", description="tiny"
    )
    assert report.written and report.source_kind == "torch"
    assert report.agreement.frames == 120
    assert report.agreement.label_agreement == 1.0
    assert report.agreement.max_probability_difference < 1e-5
    # the card is in the file, NCHW as PyTorch takes it, and classify uses it as written
    model = auroradask.load_model(out)
    assert (model.layout, model.classes, model.card.description) == ("NCHW", CLASSES, "tiny")
    results = auroradask.classify(open_sample(chunk_minutes=2), out).compute()
    built = _convert._build_from_callable(f"{torch_source}:build")
    np.testing.assert_allclose(
        results.probability.values[0], _torch_probabilities(built, sample_input), atol=1e-5
    )
    # a channels-first model quantises too: calibration frames are fed as it takes them
    quantized = auroradask.quantize_model(out, tmp_path / "tiny-int8.onnx", repeats=1)
    _check_quantized(quantized, out, sample_input, 40, layout="NCHW")
    assert quantized.agreement.label_agreement >= 0.95


def test_convert_torchscript_and_logits(tmp_path, torch_source, sample_input):
    import torch

    built = _convert._build_from_callable(f"{torch_source}:build_logits")
    scripted = tmp_path / "tiny.pt"
    torch.jit.trace(built.eval(), torch.zeros(1, 3, 224, 224)).save(str(scripted))
    out = tmp_path / "tiny-logits.onnx"
    report = auroradask.convert_model(scripted, out, classes=CLASSES, outputs="logits")
    assert report.source_kind == "torchscript" and report.written
    assert report.agreement.max_probability_difference < 1e-5
    logits = _torch_probabilities(built, sample_input)
    np.testing.assert_allclose(_ort(out, sample_input, "NCHW"), logits, rtol=1e-4, atol=1e-4)
    # the same logits declared as probabilities: the comparison refuses them
    with pytest.raises(auroradask.ModelError, match="do not sum to 1"):
        auroradask.convert_model(scripted, tmp_path / "wrong.onnx", classes=CLASSES)
    assert not (tmp_path / "wrong.onnx").exists()


def test_convert_a_torch_export_program(tmp_path, torch_source, sample_input):
    require("onnxscript")  # the exporter of ExportedPrograms
    import torch

    built = _convert._build_from_callable(f"{torch_source}:build").eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(
        built, (torch.zeros(2, 3, 224, 224),), dynamic_shapes={"image": {0: batch}}
    )
    torch.export.save(program, tmp_path / "tiny.pt2")
    out = tmp_path / "tiny-pt2.onnx"
    report = auroradask.convert_model(tmp_path / "tiny.pt2", out, classes=CLASSES)
    assert report.source_kind == "torch.export" and report.written
    assert report.agreement.max_probability_difference < 1e-5
    np.testing.assert_allclose(
        _ort(out, sample_input, "NCHW"), _torch_probabilities(built, sample_input), atol=1e-5
    )


def test_convert_refuses_a_model_that_disagrees(tmp_path, torch_source):
    out = tmp_path / "branchy.onnx"
    # tracing with all-zero frames keeps the branch real frames do not take
    with pytest.raises(auroradask.ModelError, match="disagrees.*nothing written"):
        auroradask.convert_model(f"{torch_source}:build_branchy", out, classes=CLASSES)
    assert not out.exists()
    left = {p.name for p in tmp_path.iterdir()} - {"__pycache__"}
    assert left == {"tiny_torch.py"}  # no temporary file left either
    report = auroradask.convert_model(
        f"{torch_source}:build_branchy", out, classes=CLASSES, force=True
    )
    assert report.written and out.exists()
    assert report.agreement.max_probability_difference > 1e-3
    assert "did NOT" not in report.summary()


def test_convert_cli_exit_codes(tmp_path, torch_source, capsys):
    out = tmp_path / "cli.onnx"
    classes = ",".join(CLASSES)
    assert (
        main(["model", "convert", f"{torch_source}:build", "-o", str(out), "--classes", classes])
        == 0
    )
    assert "labels agree 100.0%" in capsys.readouterr().out
    bad = ["model", "convert", f"{torch_source}:build_branchy", "-o", str(tmp_path / "b.onnx")]
    assert main([*bad, "--classes", classes]) == 2
    assert "disagrees" in capsys.readouterr().err


# ------------------------------------------------------------------------------- Keras


@pytest.fixture(scope="module")
def keras_model():
    require("tf2onnx")
    keras = require("keras")
    keras.utils.set_random_seed(0)
    inp = keras.Input((224, 224, 3), name="image")
    x = keras.layers.AveragePooling2D(8)(inp)
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", kernel_initializer="he_normal")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(4, activation="softmax")(x)
    return keras.Model(inp, out)


@pytest.mark.slow
@pytest.mark.parametrize("form", ["tiny.keras", "tiny.h5", "saved_model"])
def test_convert_a_keras_cnn(tmp_path, keras_model, form, sample_input):
    import tensorflow as tf

    path = tmp_path / form
    if form == "saved_model":
        signature = [tf.TensorSpec((None, 224, 224, 3), tf.float32, name="image")]
        keras_model.export(path, format="tf_saved_model", input_signature=signature, verbose=False)
    else:
        keras_model.save(path)
    report = auroradask.convert_model(path, tmp_path / "keras.onnx", classes=CLASSES)
    assert report.source_kind == ("savedmodel" if form == "saved_model" else "keras")
    assert report.written and report.card.layout == "NHWC"
    assert report.agreement.max_probability_difference < 1e-5
    expected = np.asarray(keras_model(sample_input[:16], training=False))
    np.testing.assert_allclose(
        _ort(tmp_path / "keras.onnx", sample_input[:16]), expected, atol=1e-5
    )


# ------------------------------------------------------------------------ errors, check


def test_sources_that_are_not_models_are_named(tmp_path):
    with pytest.raises(auroradask.SourceNotFoundError, match="'nope.pt' does not exist"):
        auroradask.convert_model("nope.pt", tmp_path / "x.onnx", classes=CLASSES)
    (tmp_path / "weights.bin").write_bytes(b"\0" * 10)
    with pytest.raises(auroradask.ArgumentError, match="cannot tell what"):
        auroradask.convert_model(tmp_path / "weights.bin", tmp_path / "x.onnx", classes=CLASSES)
    with pytest.raises(auroradask.ArgumentError, match="is not a TensorFlow SavedModel"):
        auroradask.convert_model(tmp_path, tmp_path / "x.onnx", classes=CLASSES)


def test_check_reports_card_graph_speed_and_labels(sample_input):
    report = auroradask.check_model(auroradask.demo_model(), repeats=1)
    assert report.card.classes == CLASSES and report.preset.name == "themis-pa"
    assert [(t.name, t.shape[1:]) for t in report.inputs] == [("image", (224, 224, 3))]
    assert [t.name for t in report.outputs] == ["probability"]
    assert report.frames == 120 and report.frames_per_second_per_core > 0
    direct = _ort(auroradask.demo_model(), sample_input).argmax(1)
    expected = {c: int((direct == i).sum()) for i, c in enumerate(CLASSES)}
    assert report.label_counts == expected
    assert "frames/s per core" in report.summary()


def test_check_cli(capsys):
    assert main(["model", "check", auroradask.demo_model(), "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert "input: image ['batch', 224, 224, 3] tensor(float)" in printed
    assert "labels: bad_viewing" in printed
    assert main(["model", "check", auroradask.demo_model(), "--site", "gill"]) == 2


# ----------------------------------------------------------------------------- quantise


def _check_quantized(report, source, sample_input, calibration_frames, layout="NHWC"):
    """The report's figures against a direct onnxruntime run of both files."""
    held = sample_input[calibration_frames:]
    expected, got = _ort(source, held, layout), _ort(report.path, held, layout)
    assert report.agreement.frames == len(held)
    assert report.agreement.label_agreement == pytest.approx(
        (expected.argmax(1) == got.argmax(1)).mean()
    )
    assert report.agreement.max_probability_difference == pytest.approx(
        np.abs(expected - got).max(), rel=1e-4, abs=1e-6
    )
    assert report.source_sha256 == file_sha256(str(source))
    assert report.sha256 == file_sha256(report.path)
    card = auroradask.load_model(report.path).card
    assert card.quantization["source_sha256"] == report.source_sha256
    assert card.quantization["calibration_frames"] == calibration_frames
    ops = {node.op_type for node in onnx.load(report.path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert report.float_frames_per_second > 0 and report.int8_frames_per_second > 0
    return expected, got


def test_quantize_the_demo_model(tmp_path, sample_input):
    report = auroradask.quantize_model(
        auroradask.demo_model(), tmp_path / "demo-int8.onnx", repeats=1
    )
    expected, got = _check_quantized(report, auroradask.demo_model(), sample_input, 40)
    assert report.calibration_frames == 40
    # int8 and float: the same labels, probabilities within a few hundredths
    assert report.agreement.label_agreement >= 0.95
    assert report.agreement.max_probability_difference < 0.1
    # the int8 model classifies through the ordinary pipeline and says what it is
    assert "int8 quantisation of demo-themis-pa.onnx" in report.card.description


def test_quantize_needs_held_out_frames(tmp_path):
    with pytest.raises(auroradask.InputDataError, match="120 valid frames, need more than 120"):
        auroradask.quantize_model(
            auroradask.demo_model(), tmp_path / "x.onnx", calibration_frames=120
        )
    with pytest.raises(auroradask.ArgumentError, match="must not overwrite"):
        auroradask.quantize_model(auroradask.demo_model(), auroradask.demo_model())


def test_quantize_cli(tmp_path, capsys):
    out = tmp_path / "int8.onnx"
    argv = ["model", "quantize", auroradask.demo_model(), "-o", str(out), "--frames", "30"]
    assert main([*argv, "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert "calibrated on 30 frames; on 90 other frames" in printed
    assert auroradask.load_model(out).card.quantization["calibration_frames"] == 30


@pytest.mark.slow
def test_quantize_a_resnet_sized_model(tmp_path, sample_input):
    from tests.support.models import build_resnet50

    source = build_resnet50(str(tmp_path / "resnet50.onnx"))
    report = auroradask.quantize_model(source, tmp_path / "resnet50-int8.onnx", repeats=1)
    _check_quantized(report, source, sample_input, 40)
    assert report.agreement.label_agreement >= 0.95


def test_core_install_needs_no_framework():
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    code = "import sys, auroradask; print(sorted({'torch', 'tensorflow', 'tf2onnx'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    assert "torch" not in core and "tensorflow" not in core
    assert any(d.startswith("torch") for d in project["optional-dependencies"]["torch"])


# -------------------------------------------------- frames a model is checked on, by default


def test_calibration_from_a_source_alone_is_the_first_hour_it_holds(tmp_path, capsys):
    """--calibration SOURCE with no --site/--start: the one site and first hour held."""
    out = tmp_path / "int8.onnx"
    argv = ["model", "quantize", auroradask.demo_model(), "-o", str(out), "--frames", "30"]
    assert main([*argv, "--calibration", auroradask.sample_archive(), "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("calibration: gill, 2014-03-10 06:00 to 2014-03-10 07:00 UT")
    assert "calibrated on 30 frames; on 90 other frames" in printed
    assert main(["model", "check", auroradask.demo_model(), "--frames",
                 auroradask.sample_archive(), "--repeats", "1"]) == 0  # fmt: skip
    assert "frames: gill, 2014-03-10 06:00" in capsys.readouterr().out


def test_source_frames_finds_the_one_site_or_asks(tmp_path):
    from auroradask.models._compare import source_frames
    from tests.support.utils import copy_as

    frames = source_frames(auroradask.sample_archive())
    assert list(frames["site"].values) == ["gill"]
    assert frames["time"].values[0] == np.datetime64("2014-03-10T06:00")
    assert frames.sizes["time"] == 1200 and int((frames["frame_status"] == 0).sum()) == 120
    # given a time: the one site present then; given a site: its first hour
    frames = source_frames(auroradask.sample_archive(), start="2014-03-10T06:02")
    assert frames["time"].values[0] == np.datetime64("2014-03-10T06:02")
    # two sites on the first day: the user chooses
    two = copy_as(tmp_path, "zz9")
    for path in Path(auroradask.sample_archive()).rglob("*.pgm*"):
        target = two / path.relative_to(auroradask.sample_archive())
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    with pytest.raises(ArgumentError, match=r"^calibration: .* holds the sites gill, zz9 on 2014"):
        source_frames(two, what="calibration")
    assert list(source_frames(two, "zz9")["site"].values) == ["zz9"]
    with pytest.raises(ArgumentError, match=r"holds gill, zz9 in \["):
        source_frames(two, start="2014-03-10T06:00")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArgumentError, match="holds no stream0 day folder"):
        source_frames(tmp_path / "empty")


def test_batch_size_defaults_to_auto_as_classify(monkeypatch):
    """check_model and embed choose the batch as classify does (load_model's "auto"):
    with a smaller activation budget, the demo model's automatic batch is smaller than 32,
    and both follow it."""
    import auroradask.models._model as model_module

    monkeypatch.setattr(model_module, "BATCH_ACTIVATION_BYTES", 30 * 2**20)
    auto = auroradask.load_model(auroradask.demo_model()).batch_size
    assert 1 <= auto < 32
    frames = auroradask.open_themis(
        auroradask.sample_archive(), "gill", "2014-03-10T06:00", "2014-03-10T06:01"
    )
    report = auroradask.check_model(auroradask.demo_model(), frames, repeats=1)
    assert report.batch_size == auto
    import auroradask.models._embed as embed_module

    asked = []
    loader = embed_module.load_model
    monkeypatch.setattr(
        embed_module, "load_model", lambda *a, **k: asked.append(k) or loader(*a, **k)
    )
    auroradask.embed(frames, auroradask.demo_model(), output="/Concat_output_0")
    assert [k["batch_size"] for k in asked] == ["auto"]
