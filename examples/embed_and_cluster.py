"""From an archive to a new classifier and to clusters: embed, fit a head, cluster.

1. ``embed``: classify the frames and store, beside the results, what the model sees at one
   layer (here the demo model's penultimate layer) in an embedding store;
2. ``fit_head``: a ridge head on the embeddings of labelled frames, cross-validated with
   whole nights held out, written as one ONNX model that ``classify`` runs like any other;
3. ``classify`` with the new model;
4. ``cluster``: PCA and k-means of every embedded frame, read chunk by chunk; the frames
   nearest each centre show what a cluster is.

With ``--source`` it reads a stream0 archive and a truth table (``--truth``: any form
:func:`auroradask.evaluate` accepts, e.g. a CSV of ``site,time,label``). Without, it makes
a few nights of the demo model's synthetic sky (``examples/train_demo_model.py``), whose
classes are known, so that the figures printed can be checked::

    python examples/embed_and_cluster.py --out /tmp/embed-demo
    python examples/embed_and_cluster.py --source /data/themis/stream0 --site gill \\
        --start 2014-03-01 --end 2014-03-31 --truth labels.csv --out /tmp/gill-march

Everything is written under ``--out`` (default ``auroradask-figures/embed-demo``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

import auroradask

LAYER = "/Concat_output_0"  # the demo model's penultimate layer (96 features)


def synthetic_nights(nights: int, per_class: int, seed: int, first_night: str):
    """Frames of the demo model's synthetic sky, and their truth table (site, time, label)."""
    import dask.array as da
    import pandas as pd
    import xarray as xr

    sys.path.insert(0, str(Path(__file__).parent))
    from train_demo_model import CLASSES, sky

    rng = np.random.default_rng(seed)
    slot = np.timedelta64(3, "s")
    images, times, labels = [], [], []
    for night in range(nights):
        kinds = np.repeat(np.arange(len(CLASSES)), per_class)
        rng.shuffle(kinds)
        start = (
            np.datetime64(first_night, "ns") + np.timedelta64(night, "D") + np.timedelta64(6, "h")
        )
        times.append(start + np.arange(len(kinds)) * slot)
        images.extend(sky(rng, CLASSES[k]) for k in kinds)
        labels.extend(CLASSES[k] for k in kinds)
    time = np.concatenate(times)
    frames = xr.Dataset(
        {
            "images": (("site", "time", "y", "x"), da.from_array(np.stack(images)[None], chunks=(1, 40, -1, -1))),
            "frame_status": (("site", "time"), da.zeros((1, len(time)), dtype=np.int8, chunks=(1, 40))),
            "timestamp": (("site", "time"), time[None]),
        },
        coords={"site": ["synt"], "time": time},
        attrs={"source": "examples/train_demo_model.py synthetic sky"},
    )  # fmt: skip
    return frames, pd.DataFrame({"site": "synt", "time": time, "label": labels})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="stream0 archive (default: synthetic nights)")
    parser.add_argument("--site", action="append", help="site code, repeatable")
    parser.add_argument("--start", help="UT start")
    parser.add_argument("--end", help="UT end")
    parser.add_argument("--truth", help="labels in any form evaluate accepts (with --source)")
    parser.add_argument("--mapping", help="truth code -> class mapping (name or JSON file)")
    parser.add_argument("--model", default=auroradask.demo_model())
    parser.add_argument("--layer", default=LAYER, help="tensor to embed (embedding_layers)")
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument(
        "-o", "--out", "--workdir", default="auroradask-figures/embed-demo", help="output folder"
    )
    args = parser.parse_args()
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)

    if args.source:
        if not (args.site and args.start and args.truth):
            parser.error("--source needs --site, --start and --truth")
        frames = auroradask.open_themis(args.source, args.site, args.start, args.end)
        truth, new_frames, new_truth = args.truth, None, None
    else:
        print("no --source: 8 nights of the demo model's synthetic sky, 20 frames a class a night")
        frames, truth = synthetic_nights(8, 20, seed=1, first_night="2020-01-01")
        new_frames, new_truth = synthetic_nights(3, 20, seed=2, first_night="2020-02-01")

    # 1. embeddings (and the model's own labels) into a store: resumable, day chunks
    store = os.fspath(work / "embeddings.zarr")
    embedded = auroradask.embed(frames, args.model, output=args.layer)
    # a store takes consecutive 3-s slots: one write per run of them (a night, here)
    gaps = np.flatnonzero(np.diff(embedded["time"].values) != np.timedelta64(3, "s")) + 1
    written = 0
    for run in np.split(np.arange(embedded.sizes["time"]), gaps):
        written += auroradask.to_zarr(embedded.isel(time=slice(run[0], run[-1] + 1)), store).written
    print(f"embedded {written} frames ({embedded.sizes['feature']} features) -> {store}")

    # 2. a ridge head on the labelled frames, one ONNX model with the feature extractor
    head_path = os.fspath(work / "head.onnx")
    fit = auroradask.fit_head(store, truth, kind="ridge", mapping=args.mapping, path=head_path)
    print(fit.summary())
    print(f"head -> {head_path} (auroradask classify --model {head_path})")

    # 3. the new model runs like any other (on nights it never saw, where there are some)
    if new_frames is not None:
        results = auroradask.classify(new_frames, head_path).compute()
        names = np.asarray(results["class"].values)[results["label"].values[0]]
        reached = float((names == new_truth["label"].to_numpy()).mean())
        print(f"on 3 new nights: accuracy {reached:.3f} (cross-validated {fit.accuracy:.3f})")

    # 4. clusters of every embedded frame, and the frames nearest each centre
    clusters = auroradask.cluster(store, args.clusters, n_components=50, nearest=8)
    print("frames per cluster:", clusters.sizes.to_dict())
    if new_frames is not None:
        from sklearn.metrics import adjusted_rand_score

        labels = clusters.labels.sel(site="synt", time=truth["time"].to_numpy()).values
        print(
            "adjusted Rand index against the generator's classes: "
            f"{adjusted_rand_score(truth['label'], labels):.2f} (chance: 0)"
        )
    nearest = work / "nearest.csv"
    clusters.nearest.to_csv(nearest, index=False)
    print(f"frames nearest each centre -> {nearest}")

    # 5. what each cluster is: a montage of the frames nearest its centre, a row a cluster
    images, titles = clusters.nearest_images(frames)
    montage = work / "clusters.png"
    auroradask.montage(images, titles=titles, columns=8, path=montage)
    print(f"montage of the clusters -> {montage}")


if __name__ == "__main__":
    main()
