"""Write classifications text files and interval sheets in the published formats, for tests.

There is no internet here to fetch published files, so :func:`realistic_archive` writes
files the way the published classifier's are laid out (extra fields in the names, several
comment lines, rows out of time order in minute batches, an empty file for a night the camera
was off, timestamps to the second off the 3-s grid) and :func:`realistic_sheet` the interval
sheets people made while watching those nights (codes in mixed case, a comment column, an
unknown code, intervals past the end of a night, a night that has no file).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

PRODUCER = "Pulsating aurora classification of THEMIS ASI images"
#: Class index → name in the published files (not the demo model's order, on purpose).
PUBLISHED_CLASSES = ("no_aurora", "other_aurora", "pulsating", "bad_viewing")
SHEET_HEADER = ("Station", "Date", "Start frame", "End frame", "Classification", "Comment")


def write_classifications(
    root: str | os.PathLike,
    site: str,
    day: str,
    rows: Sequence[tuple[str, int, str, float | str]],
    *,
    producer: str = PRODUCER,
    extra: str = "themis_pa_resnet",
    header: bool = True,
) -> Path:
    """Write ``root/YYYY/MM/DD/YYYYMMDD_<site>_<extra>_classifications.txt``.

    ``rows`` are ``(HH:MM:SS, prediction, prediction_str, confidence)`` in the order given;
    a confidence given as text is written as is. With no rows (and ``header`` False) the file
    has comment lines only, as real empty files do.
    """
    folder = Path(root, day[:4], day[4:6], day[6:])
    folder.mkdir(parents=True, exist_ok=True)
    name = (
        f"{day}_{site}_{extra}_classifications.txt"
        if extra
        else f"{day}_{site}_classifications.txt"
    )
    lines = [
        f"# {producer}",
        f"# Station: {site}   Date: {day[:4]}-{day[4:6]}-{day[6:]}",
        "# Columns: date (YYYYMMDD), time (UT), prediction (class index), prediction_str "
        "(class name), confidence (probability of the predicted class)",
        "",
    ]
    if header or rows:
        lines.append("date,time,prediction,prediction_str,confidence")
    for time, prediction, name_, confidence in rows:
        value = confidence if isinstance(confidence, str) else f"{confidence:.4f}"
        lines.append(f"{day},{time},{prediction},{name_},{value}")
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sheet(
    path: str | os.PathLike, rows: Sequence[Sequence], *, sheet: str = "Sheet1"
) -> Path:
    """An interval sheet (``.csv`` or ``.xlsx``) with the published columns."""
    path = Path(path)
    table = pd.DataFrame(
        [list(r) + [""] * (len(SHEET_HEADER) - len(r)) for r in rows], columns=SHEET_HEADER
    )
    if path.suffix == ".xlsx":
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            pd.DataFrame({"note": ["labelled by the night watchers"]}).to_excel(
                writer, sheet_name="README", index=False
            )
            table.to_excel(writer, sheet_name=sheet, index=False)
    else:
        table.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------- hand example
#: The small example every figure of test_evaluate is computed from by hand.
HAND_CLASSES = ("no_aurora", "pulsating", "other_aurora", "bad_viewing")
HAND_FILES = {
    # rows out of time order; 06:00:04 lies in the 06:00:03 slot
    ("gill", "20140310"): [
        ("06:00:09", 1, "pulsating", 0.9),
        ("06:00:00", 0, "no_aurora", 0.8),
        ("06:00:04", 1, "pulsating", 0.6),
        ("06:00:15", 3, "bad_viewing", 0.7),
        ("06:00:06", 2, "other_aurora", 0.55),
        ("06:00:12", 1, "pulsating", 0.95),
    ],
    ("gill", "20140311"): [],  # comments only: the camera was off
    ("fsmi", "20140310"): [
        ("07:00:03", 0, "no_aurora", 0.99),
        ("07:00:00", 0, "no_aurora", 0.85),
        ("07:00:06", 1, "pulsating", 0.4),
    ],
    # ("fsmi", "20140311"): no file at all
}
#: Sheet rows (spreadsheet rows 2..10); themis-pa codes.
HAND_SHEET = [
    ("gill", 20140310, 0, 0, "cs", "clear"),
    ("gill", 20140310, 1, 3, "pa", ""),
    ("gill", 20140310, 4, 9, " PA ", "past the end of the night"),
    ("gill", 20140310, 2, 2, "aur?", "unsure"),
    ("gill", 20140311, 0, 10, "pa", "camera off"),
    ("fsmi", 20140310, 0, 1, "cs", ""),
    ("fsmi", 20140310, 2, 2, "dis-sub", ""),
    ("fsmi", 20140311, 0, 5, "cs", "no file"),
    ("fsmi", 20140310, 5, 7, "cl", "starts past the end"),
]


def hand_archive(root: str | os.PathLike) -> Path:
    """Write :data:`HAND_FILES` under ``root``."""
    for (site, day), rows in HAND_FILES.items():
        write_classifications(root, site, day, rows, header=bool(rows))
    return Path(root)


# ------------------------------------------------------------------------------ realistic
REALISTIC_SITES = ("atha", "fsmi", "gill", "rank")
REALISTIC_DAYS = ("20170201", "20170202", "20170203")
#: The human codes behind each published class, and how often each is used for it.
_CODES = {
    "no_aurora": (["cs"], [1.0]),
    "other_aurora": (["dis-sub", "diff"], [0.6, 0.4]),
    "pulsating": (["pa"], [1.0]),
    "bad_viewing": (["cl", "bv"], [0.7, 0.3]),
}


def realistic_archive(
    root: str | os.PathLike, seed: int = 7
) -> dict[tuple[str, str], pd.DataFrame]:
    """Published-format files for four sites and three nights; returns the rows written.

    Nights run from about 01-04 UT to 11-13 UT; a frame every 3 s, 1 % missing; a frame's
    time is to the second, 0-2 s into its slot; classes persist over minutes (a Markov
    chain of what the sky showed), a model right with the probability it reports; rows are written in minute batches out of
    order, as the parallel published code does. ``rank`` on the second night has an empty
    file; ``atha`` on the third night has no file.
    """
    rng = np.random.default_rng(seed)
    written = {}
    stay = 0.995
    for site in REALISTIC_SITES:
        for day in REALISTIC_DAYS:
            if (site, day) == ("atha", "20170203"):
                continue
            if (site, day) == ("rank", "20170202"):
                write_classifications(root, site, day, [], header=False)
                written[(site, day)] = pd.DataFrame(
                    columns=["time", "prediction", "confidence", "sky"]
                )
                continue
            start = int(rng.integers(1 * 1200, 4 * 1200))
            stop = int(rng.integers(11 * 1200, 13 * 1200))
            slots = np.arange(start, stop)
            slots = slots[rng.random(len(slots)) > 0.01]
            sky = np.empty(len(slots), dtype=np.int64)  # what the sky really showed
            current = int(rng.integers(4))
            for i in range(len(slots)):
                if rng.random() > stay:
                    current = int(rng.integers(4))
                sky[i] = current
            # a calibrated model: right with the probability it reports
            confidence = np.round(0.25 + 0.75 * rng.beta(4, 1.5, len(slots)), 4)
            right = rng.random(len(slots)) < confidence
            classes = np.where(right, sky, (sky + rng.integers(1, 4, len(slots))) % 4)
            seconds = slots * 3 + rng.choice([0, 0, 0, 1, 2], len(slots))
            times = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in seconds]
            rows = [
                (t, int(c), PUBLISHED_CLASSES[c], float(p))
                for t, c, p in zip(times, classes, confidence, strict=True)
            ]
            minutes = [rows[i : i + 20] for i in range(0, len(rows), 20)]
            order = rng.permutation(len(minutes))
            shuffled = [row for m in order for row in minutes[m]]
            write_classifications(root, site, day, shuffled)
            written[(site, day)] = pd.DataFrame(
                {"time": times, "prediction": classes, "confidence": confidence, "sky": sky}
            )
    return written


def realistic_sheet(
    path: str | os.PathLike,
    written: dict[tuple[str, str], pd.DataFrame],
    seed: int = 11,
    sheet: str = "Feb 2017",
) -> Path:
    """An interval sheet as night watchers make it, for the files :func:`realistic_archive`
    wrote: runs of frames labelled with a code that mostly (not always) fits the model's
    class, gaps between intervals, codes in mixed case and with spaces, an unknown code, a
    night's last interval past its end, intervals for the empty night and the missing one.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for (site, day), table in sorted(written.items()):
        n = len(table)
        if n == 0:
            rows.append((site, int(day), 0, 400, "cs", "camera off?"))
            continue
        # the watcher labels what the sky showed, by intervals, and sometimes errs
        ordered = table.sort_values("time")["sky"].to_numpy()
        first = 0
        while first < n:
            # an interval ends where the sky changes, or earlier
            change = np.flatnonzero(ordered[first:] != ordered[first])
            run_end = first + int(change[0]) - 1 if len(change) else n - 1
            last = min(first + int(rng.integers(30, 600)), run_end)
            if rng.random() < 0.75 or last == n - 1:  # labelled; otherwise a gap
                majority = int(np.bincount(ordered[first : last + 1], minlength=4).argmax())
                if rng.random() < 0.05:
                    majority = int(rng.integers(4))
                codes, weights = _CODES[PUBLISHED_CLASSES[majority]]
                code = str(rng.choice(codes, p=weights))
                if rng.random() < 0.1:
                    code = code.upper() if rng.random() < 0.5 else f" {code} "
                if rng.random() < 0.03:
                    code = "pc"  # "patchy?": not in the convention
                end = last + int(rng.integers(5, 50)) if last == n - 1 else last
                rows.append((site, int(day), first, end, code, ""))
            first = last + 1 + (int(rng.integers(0, 60)) if rng.random() < 0.5 else 0)
    rows.append(("atha", 20170203, 0, 999, "pa", "no file for this night"))
    rows.append(("gill", 20170201, 100, 140, "pc", "patchy? (no such code in the convention)"))
    order = rng.permutation(len(rows))
    return write_sheet(path, [rows[i] for i in order], sheet=sheet)


def data_rows(path: str | os.PathLike) -> list[tuple[str, str, int, str, float]]:
    """The CSV rows of a classifications file as values, in file order (read with the csv
    module, not with auroradask)."""
    import csv

    lines = [line for line in Path(path).read_text().splitlines() if line and line[0] != "#"]
    if not lines:
        return []
    assert lines[0] == "date,time,prediction,prediction_str,confidence"
    return [
        (r["date"], r["time"], int(r["prediction"]), r["prediction_str"], float(r["confidence"]))
        for r in csv.DictReader(lines)
    ]
