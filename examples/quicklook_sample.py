"""The README's quicklook, made from the bundled sample: see what the model saw.

Classifies the sample (Gillam, 2014-03-10 06:00-06:06 UT) with the demo model into a store,
keogram included, then draws the night's quicklook (the keogram over the label strip and the
confidence) into ``OUT/quicklook.png``, a grid of the least confident frames of the most
common class and a short movie beside the store. Run:
``python examples/quicklook_sample.py [--out OUT]`` (default
``auroradask-figures/quicklook-sample`` in the current folder). The docs' copy of this figure
is made by ``examples/gallery.py``.
"""

import argparse
from pathlib import Path

import auroradask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o", "--out", default="auroradask-figures/quicklook-sample", help="output folder"
    )
    work = figures = Path(parser.parse_args().out)
    figures.mkdir(parents=True, exist_ok=True)
    store = work / "sample-results.zarr"

    source = auroradask.sample_archive()
    frames = auroradask.open_themis(source, "gill", "2014-03-10T06:00", "2014-03-10T06:06")
    results = auroradask.classify(frames, auroradask.demo_model())  # keogram=True: stored too
    auroradask.to_zarr(results, store)

    # source= is read only if the store holds no keogram
    auroradask.quicklook(
        store,
        site="gill",
        night="2014-03-09",
        source=source,
        path=figures / "quicklook.png",
        dpi=80,
    )
    print("quicklook ->", figures / "quicklook.png")

    counts = auroradask.describe(auroradask.open_results(store))["label_counts"]
    common = max(counts, key=counts.get)
    auroradask.class_montage(
        store, source, common, n=8, pick="least", path=work / "least-confident.png"
    )
    print(f"8 least confident {common} frames ->", work / "least-confident.png")
    info = auroradask.movie(frames, work / "sample.mp4", results=store, speedup=60)
    print(f"movie: {info.frames} frames at {info.fps:g} fps ->", info.path)


if __name__ == "__main__":
    main()
