"""From a results store to an occurrence figure and an event table.

Writes its own store of synthetic labels (structured nights at four THEMIS sites for two
winter weeks; see ``tests/synthetic.py``), then does what a study of pulsating aurora
starts with:

1. occurrence of each class by MLT hour and site, over usable slots only (bad viewing
   excluded), and its heatmap; then the sites pooled by magnetic latitude and MLT, and
   the dial of the survey papers with the usable hours beside it;
2. the pulsating-aurora events (at least 5 min, gaps up to 30 s bridged) with their MLT;
3. a made-up 1-minute AE index attached to each event (mean over the event, and the value
   nearest its start);
4. the timeline of one site-night.

Run: ``python examples/occurrence_study.py [--out OUT]`` (default
``auroradask-figures/occurrence-study`` in the current folder).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support

import auroradask  # noqa: E402
from tests.support.synthetic import synthetic_results  # noqa: E402


def main(outdir: str) -> None:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "results.zarr"
    if not store.exists():
        synthetic = synthetic_results(["gill", "fsmi", "rank", "atha"], "2014-01-01", days=14)
        auroradask.to_zarr(synthetic, store)
    results = auroradask.open_results(store)

    # 1. occurrence by MLT hour and site, over usable slots (bad viewing is not usable)
    occurrence = auroradask.occurrence(results, by=["mlt_hour", "site"], exclude="bad_viewing")
    rate = occurrence["rate"].sel({"class": "pulsating"})
    print("pulsating aurora, rate of usable slots by MLT hour (all sites):")
    total = occurrence.sum("site")
    print(
        (total["count"].sel({"class": "pulsating"}) / total["usable"])
        .to_series()
        .dropna()
        .round(3)
        .to_string()
    )
    figure = auroradask.plot_occurrence(occurrence, "pulsating", x="mlt_hour", y="site")
    figure.savefig(out / "occurrence.png", dpi=120)
    occurrence.to_dataframe(dim_order=["class", "mlt_hour", "site"]).to_csv(out / "occurrence.csv")
    print(f"highest rate: {float(rate.max()):.2f}")

    # 1b. the sites pooled on a magnetic latitude x MLT grid (1-degree rows), as a dial
    dial = auroradask.occurrence(results, by=("mlat", "mlt"), exclude="bad_viewing")
    auroradask.plot_occurrence_dial(dial, "pulsating").savefig(out / "dial.png", dpi=120)

    # 2. events
    events = auroradask.events(results, "pulsating", min_duration="5min", max_gap="30s")
    print(f"\n{len(events)} events; longest:")
    print(events.nlargest(5, "duration")[["site", "start", "duration", "mlt_start"]].to_string())

    # 3. a geomagnetic index joined to the events (here made up: replace with real AE)
    minutes = pd.date_range("2014-01-01", "2014-01-15", freq="1min")
    ae = pd.Series(200 + 150 * np.sin(np.arange(len(minutes)) / 90.0), index=minutes, name="ae")
    events = auroradask.join_over_events(events, ae, agg=["mean", "max"])
    events = auroradask.join_nearest(events, ae.rename("ae_at_start"), tolerance="2min")
    events.to_csv(out / "events.csv", index=False)
    auroradask.plot_events(events).savefig(out / "events.png", dpi=120)

    # 4. one night
    auroradask.plot_timeline(results, "gill", "2014-01-05").savefig(out / "timeline.png", dpi=120)
    written = "occurrence.png, occurrence.csv, dial.png, events.csv, events.png, timeline.png"
    print(f"\nwrote {written} in {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o", "--out", default="auroradask-figures/occurrence-study", help="output folder"
    )
    main(parser.parse_args().out)
