"""The README's Python example, end to end on the bundled sample.

Opens the sample archive lazily, classifies it with the demo model on a LocalCluster (the
dashboard link is printed), writes a Zarr store, then prints counts per class and the first
labelled times. Run: ``python examples/classify_sample.py [STORE]``.
"""

import sys

import auroradask


def main() -> None:
    store = sys.argv[1] if len(sys.argv) > 1 else "sample-results.zarr"

    frames = auroradask.open_themis(
        auroradask.sample_archive(), ["gill"], "2014-03-10T06:00", "2014-03-10T06:06"
    )
    results = auroradask.classify(frames, auroradask.demo_model(), elevation="circle")

    with auroradask.start_client(workers=2, dashboard_address="127.0.0.1:0") as client:
        print("dashboard:", auroradask.dashboard_link(client))
        summary = auroradask.to_zarr(results, store)
    print(f"wrote {summary.written} slots in {summary.seconds:.1f} s")

    stored = auroradask.open_results(store)
    print("per class:", auroradask.describe(stored)["label_counts"])
    gill = stored.sel(site="gill")
    labelled = gill.isel(time=(gill.label >= 0).values)
    for time, label, confidence in zip(
        labelled.time.values[:5],
        labelled.label.values[:5],
        labelled.confidence.values[:5],
        strict=True,
    ):
        print(f"{str(time)[:19]}  {stored['class'].values[int(label)]:<13} {confidence:.2f}")


if __name__ == "__main__":  # worker processes import this file: start nothing then
    main()
