"""Text files in the format users of the published pulsating-aurora classifier already read."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import xarray as xr


def export_text(results: xr.Dataset, outdir: str | os.PathLike) -> list[str]:
    """Write one CSV file per site and UT day of classified frames.

    Files are ``OUTDIR/YYYY/MM/DD/YYYYMMDD_<site>_classifications.txt``: two ``#`` lines, a blank
    line, then ``date,time,prediction,prediction_str,confidence`` rows (``date`` YYYYMMDD,
    ``time`` HH:MM:SS of the frame, the class index and name, the chosen class's probability),
    classified frames only, in time order.

    Parameters
    ----------
    results
        A results dataset or store (:func:`auroradask.open_results`).
    outdir
        Folder to write into.

    Returns
    -------
    list of str
        The files written.
    """
    classes = [str(c) for c in results["class"].values]
    written = []
    for site in results["site"].values:
        one = results.sel(site=site)
        label = one["label"].values
        keep = label >= 0
        if not keep.any():
            continue
        stamps = pd.DatetimeIndex(one["timestamp"].values[keep])
        table = pd.DataFrame(
            {
                "date": stamps.strftime("%Y%m%d"),
                "time": stamps.strftime("%H:%M:%S"),
                "prediction": label[keep].astype(int),
                "prediction_str": np.array(classes, dtype=object)[label[keep]],
                "confidence": np.round(one["confidence"].values[keep].astype(float), 4),
            }
        )
        for day, rows in table.groupby("date", sort=True):
            folder = os.path.join(os.fspath(outdir), day[:4], day[4:6], day[6:])
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f"{day}_{site}_classifications.txt")
            with open(path, "w") as f:
                f.write(
                    f"# auroradask classifications of THEMIS ASI site {site}, UT day {day}\n"
                    f"# model {results.attrs.get('model_file', '?')} "
                    f"(sha256 {results.attrs.get('model_sha256', '?')[:12]}); "
                    f"classes {', '.join(f'{i}={c}' for i, c in enumerate(classes))}\n\n"
                )
                rows.to_csv(f, index=False, lineterminator="\n")
            written.append(path)
    return written
