"""import_text: the published text format onto the store's 3-s slot grid, and back."""

from __future__ import annotations

import hashlib
import json
import os

import dask.array as da
import numpy as np
import pandas as pd
import pytest

import auroradask
from auroradask._schema import DAY_SLOTS, FRAME_MISSING, NOT_WRITTEN, OK
from auroradask.errors import ArgumentError, InputDataError, SourceNotFoundError
from tests.support.textfiles import (
    HAND_CLASSES,
    HAND_FILES,
    PRODUCER,
    PUBLISHED_CLASSES,
    PUBLISHED_LINE,
    data_rows,
    hand_archive,
    realistic_archive,
    write_classifications,
    write_published,
)


def slot(day: str, hhmmss: str) -> int:
    """Index on the import's time axis (which starts on 2014-03-10) of a time's 3-s slot."""
    t = pd.Timestamp(f"{day} {hhmmss}") - pd.Timestamp("2014-03-10")
    return int(t.total_seconds()) // 3


def test_rows_out_of_order_land_in_their_slots(tmp_path):
    hand_archive(tmp_path)
    results = auroradask.import_text(tmp_path)
    assert list(results["class"].values) == list(HAND_CLASSES)  # from the pairs, by index
    assert list(results["site"].values) == ["fsmi", "gill"]
    assert results.sizes["time"] == 2 * DAY_SLOTS
    assert results["time"].values[0] == np.datetime64("2014-03-10T00:00")
    assert isinstance(results["label"].data, da.Array)
    assert results["label"].data.chunks == ((1, 1), (DAY_SLOTS, DAY_SLOTS))
    assert results["probability"].data.chunks[:2] == ((1, 1), (DAY_SLOTS, DAY_SLOTS))

    got = results.sel(site="gill").compute()
    for hhmmss, index, name, confidence in HAND_FILES[("gill", "20140310")]:
        i = slot("20140310", hhmmss)
        assert got["label"].values[i] == index and HAND_CLASSES[index] == name
        assert got["confidence"].values[i] == np.float32(confidence)
        assert got["timestamp"].values[i] == np.datetime64(f"2014-03-10T{hhmmss}", "ns")
        assert got["frame_status"].values[i] == OK
    assert got["time"].values[slot("20140310", "06:00:04")] == np.datetime64("2014-03-10T06:00:03")
    assert (got["label"].values >= 0).sum() == 6
    assert np.isnan(got["probability"].values).all()
    # no row: frame_missing on a day with a file (the empty file's day too)
    assert (got["frame_status"].values == FRAME_MISSING).sum() == 2 * DAY_SLOTS - 6
    assert np.isnat(got["timestamp"].values[got["label"].values < 0]).all()
    assert np.isnan(got["confidence"].values[got["label"].values < 0]).all()

    fsmi = results.sel(site="fsmi").compute()
    day2 = fsmi["frame_status"].values[DAY_SLOTS:]
    assert (day2 == NOT_WRITTEN).all()  # the missing site-day
    assert (fsmi["label"].values >= 0).sum() == 3
    assert fsmi["latitude"].values == pytest.approx(60.017)


def test_attributes_say_the_results_were_imported(tmp_path):
    hand_archive(tmp_path)
    results = auroradask.import_text(str(tmp_path))
    files = json.loads(results.attrs["import_files"])
    assert len(files) == 3
    for entry in files:
        data = open(entry["file"], "rb").read()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["producer"] == PRODUCER
    assert sorted(e["rows"] for e in files) == [0, 3, 6]
    assert json.loads(results.attrs["import_producers"]) == [PRODUCER]
    assert results.attrs["model_file"] == PRODUCER
    sha = hashlib.sha256(PRODUCER.encode()).hexdigest()
    assert results.attrs["model_sha256"] == f"imported-text:{sha}"
    assert results.attrs["preset"] == "imported-text"
    assert "unknown" in results["probability"].attrs["comment"]


def test_an_empty_file_alone_needs_the_classes(tmp_path):
    write_classifications(tmp_path, "gill", "20140311", [], header=False)
    with pytest.raises(InputDataError, match="classes="):
        auroradask.import_text(tmp_path)
    results = auroradask.import_text(tmp_path, classes=HAND_CLASSES).compute()
    assert (results["label"].values == -1).all()
    assert (results["frame_status"].values == FRAME_MISSING).all()


def exported_file(root, site: str, day: str):
    return root / day[:4] / day[4:6] / day[6:] / f"{day}_{site}_classifications.txt"


def test_round_trip_gives_the_same_rows_sorted(tmp_path):
    hand_archive(tmp_path / "in")
    store = tmp_path / "imported.zarr"
    auroradask.to_zarr(auroradask.import_text(tmp_path / "in"), store)
    written = auroradask.export_text(auroradask.open_results(store), tmp_path / "out")
    assert len(written) == 2  # the empty day has no classified frame: no file
    for (site, day), rows in HAND_FILES.items():
        if not rows:
            continue
        (original,) = (tmp_path / "in").glob(f"**/{day}_{site}_*_classifications.txt")
        exported = exported_file(tmp_path / "out", site, day)
        assert (
            exported.read_text().splitlines()[3] == "date,time,prediction,prediction_str,confidence"
        )
        assert data_rows(exported) == sorted(data_rows(original))
        assert data_rows(original) != sorted(data_rows(original))  # it was out of order


def test_realistic_files_round_trip(tmp_path):
    written = realistic_archive(tmp_path / "in")
    store = tmp_path / "imported.zarr"
    auroradask.to_zarr(auroradask.import_text(tmp_path / "in"), store)
    auroradask.export_text(auroradask.open_results(store), tmp_path / "out")
    for (site, day), table in written.items():
        (original,) = (tmp_path / "in").glob(f"**/{day}_{site}_*_classifications.txt")
        exported = exported_file(tmp_path / "out", site, day)
        if table.empty:
            assert not exported.exists()
            continue
        assert data_rows(exported) == sorted(data_rows(original))


def test_an_import_store_resumes_and_extends_but_refuses_another_producer(tmp_path):
    first = tmp_path / "first"
    write_classifications(first, "gill", "20140310", HAND_FILES[("gill", "20140310")])
    store = tmp_path / "s.zarr"
    summary = auroradask.to_zarr(auroradask.import_text(first), store)
    assert summary.written == DAY_SLOTS
    again = auroradask.to_zarr(auroradask.import_text(first), store)
    assert again.written == 0 and again.skipped == DAY_SLOTS

    later = tmp_path / "later"
    write_classifications(later, "gill", "20140311", [("01:00:00", 0, "no_aurora", 0.5)])
    write_classifications(later, "fsmi", "20140311", [("02:00:00", 2, "other_aurora", 0.7)])
    auroradask.to_zarr(auroradask.import_text(later, classes=HAND_CLASSES), store)
    stored = auroradask.open_results(store)
    assert list(stored["site"].values) == ["gill", "fsmi"]
    assert stored.sizes["time"] == 2 * DAY_SLOTS
    labels = stored["label"].values
    assert (labels >= 0).sum() == 8
    assert labels[1, slot("20140311", "02:00:00")] == 2

    other = tmp_path / "other"
    write_classifications(
        other, "gill", "20140312", [("01:00:00", 0, "no_aurora", 0.5)], producer="another model"
    )
    with pytest.raises(auroradask.StoreError, match="another model"):
        auroradask.to_zarr(auroradask.import_text(other, classes=HAND_CLASSES), store)


def test_files_are_read_again_when_computed_and_checked(tmp_path):
    path = write_classifications(tmp_path, "gill", "20140310", [("06:00:00", 0, "a", 0.5)])
    results = auroradask.import_text(tmp_path)
    path.write_text(path.read_text().replace("0.5000", "0.6000"))
    with pytest.raises(InputDataError, match="changed since"):
        results.compute()


BAD = "date,time,prediction,prediction_str,confidence"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("20140310_gill_x_classifications.txt", "# c\n\ndate,time,label\n", "expected the header"),
        (
            "20140310_gill_x_classifications.txt",
            f"# c\n\n{BAD}\n20140310,6:00,0,a,0.5\n",
            ":4: cannot read",
        ),
        (
            "20140310_gill_x_classifications.txt",
            f"{BAD}\n20140310,06:00:00,0,a,1.5\n",
            ":2: cannot read",
        ),
        (
            "20140310_gill_x_classifications.txt",
            f"{BAD}\n20140310,06:00:00,x,a,0.5\n",
            "cannot read",
        ),
        (
            "20140310_gill_x_classifications.txt",
            f"{BAD}\n20140310,06:00:00,0,a,0.5\n20140310,06:00:03,0,,0.5\n",
            ":3: cannot read",
        ),
        (
            "20140310_gill_x_classifications.txt",
            f"{BAD}\n20140310,06:00:00,0,a,nan\n",
            ":2: cannot read",
        ),
        (
            "20140310_gill_x_classifications.txt",
            f"# c\n\n{BAD.replace(',', chr(9))}\n20140310\t06:00\t0\ta\t0.5\n",
            ":4: cannot read",
        ),
        (
            "20140310_gill_x_classifications.txt",
            f"{BAD}\n20140311,06:00:00,0,a,0.5\n",
            "not the file's day",
        ),
        (
            "20140310_gill_x_classifications.txt",
            f"{BAD}\n20140310,06:00:00,0,a,0.5\n20140310,06:00:02,0,a,0.5\n",
            "same 3-s slot",
        ),
        ("20140310_Gill_x_classifications.txt", f"{BAD}\n", "not a site code"),
        ("20141310_gill_x_classifications.txt", f"{BAD}\n", "not a YYYYMMDD date"),
        (
            "20140310_gill_x_classifications.txt",
            f"{BAD}\n20140310,06:00:00,0,a,0.5\n20140310,06:00:03,0,b,0.5\n",
            "class index 0 has several names",
        ),
        (
            "20140310_gill_x_classifications.txt",
            f"{BAD}\n20140310,06:00:00,1,b,0.5\n",
            "indices \\[0\\]",
        ),
    ],
)
def test_malformed_files_are_refused_with_the_place(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputDataError, match=message):
        auroradask.import_text(tmp_path / name)


def test_two_files_for_one_site_day_or_two_producers_are_refused(tmp_path):
    write_classifications(
        tmp_path / "a", "gill", "20140310", [("06:00:00", 0, "a", 0.5)], extra="v1"
    )
    write_classifications(
        tmp_path / "a", "gill", "20140310", [("06:00:00", 0, "a", 0.5)], extra="v2"
    )
    with pytest.raises(InputDataError, match="two files for site gill on 20140310"):
        auroradask.import_text(tmp_path / "a")
    write_classifications(tmp_path / "b", "gill", "20140310", [("06:00:00", 0, "a", 0.5)])
    write_classifications(
        tmp_path / "b", "gill", "20140311", [("06:00:00", 0, "a", 0.5)], producer="version 2"
    )
    with pytest.raises(InputDataError, match="2 producers"):
        auroradask.import_text(tmp_path / "b")
    results = auroradask.import_text(tmp_path / "b", producer="the published classifier")
    assert results.attrs["model_file"] == "the published classifier"
    assert json.loads(results.attrs["import_producers"]) == [PRODUCER, "version 2"]


def test_bad_arguments(tmp_path):
    with pytest.raises(SourceNotFoundError, match="^paths:"):
        auroradask.import_text(tmp_path / "nothing")
    with pytest.raises(ArgumentError, match="^paths: no"):
        auroradask.import_text(tmp_path)
    write_classifications(tmp_path, "gill", "20140310", [("06:00:00", 1, "b", 0.5)])
    with pytest.raises(ArgumentError, match="^classes:"):
        auroradask.import_text(tmp_path, classes=["b", "a"])
    assert list(auroradask.import_text([tmp_path], classes=["a", "b"])["class"].values) == [
        "a",
        "b",
    ]


def test_generator_paths_and_single_files(tmp_path):
    paths = [
        write_classifications(tmp_path, "gill", d, [("06:00:00", 0, "a", 0.5)])
        for d in ("20140310", "20140312")
    ]
    results = auroradask.import_text(p for p in paths)
    assert results.sizes["time"] == 3 * DAY_SLOTS
    assert json.loads(results.attrs["source"]) == [os.fspath(p) for p in paths]
    status = results["frame_status"].values[0]
    assert (status[DAY_SLOTS : 2 * DAY_SLOTS] == NOT_WRITTEN).all()


def test_a_later_import_into_the_store_lists_its_files_too(tmp_path):
    first = write_classifications(tmp_path / "a", "gill", "20140310", [("06:00:00", 0, "a", 0.5)])
    later = write_classifications(tmp_path / "b", "gill", "20140311", [("06:00:00", 0, "a", 0.7)])
    store = tmp_path / "s.zarr"
    auroradask.to_zarr(auroradask.import_text(first), store)
    auroradask.to_zarr(auroradask.import_text(later), store)
    files = json.loads(auroradask.open_results(store).attrs["import_files"])
    assert [f["file"] for f in files] == [str(first), str(later)]


# ------------------------------------------------- the published classifier's own files
# No real file of the published classifier is at hand: write_published builds them from
# issue 29's description (first line "# File created on ...", second line the same in every
# file) and from the classifier's public code (names with the imager, folders not padded).

#: Three nights of gill and fsmi written on four different days, rows out of time order,
#: an empty file (header, no rows) for fsmi on the second night.
PUBLISHED = {
    ("gill", "20140310", "2023-07-04 15:06:24"): [
        ("06:00:09", 2, "pulsating", 0.91),
        ("06:00:00", 0, "no_aurora", 0.8),
        ("06:00:04", 2, "pulsating", 0.6),
        ("06:00:15", 3, "bad_viewing", 0.7),
        ("06:00:06", 1, "other_aurora", 0.55),
    ],
    ("gill", "20140311", "2023-07-05 09:12:00"): [
        ("02:00:02", 1, "other_aurora", 0.75),
        ("01:59:57", 0, "no_aurora", 0.99),
    ],
    ("fsmi", "20140310", "2023-07-06 23:59:59"): [
        ("07:00:03", 0, "no_aurora", 0.99),
        ("07:00:00", 2, "pulsating", 0.85),
    ],
    ("fsmi", "20140311", "2023-07-07 00:00:01"): [],
}


def published_archive(root, sep: str = ",") -> dict:
    paths = {}
    for (site, day, created), rows in PUBLISHED.items():
        paths[(site, day)] = write_published(root, site, day, rows, created=created, sep=sep)
    return paths


@pytest.mark.parametrize("sep", [",", "\t"])
def test_published_files_of_several_creation_dates_are_one_producer(tmp_path, sep):
    paths = published_archive(tmp_path / "in", sep)
    results = auroradask.import_text(tmp_path / "in")
    assert results.attrs["model_file"] == PUBLISHED_LINE
    assert json.loads(results.attrs["import_producers"]) == [PUBLISHED_LINE]
    assert list(results["class"].values) == list(PUBLISHED_CLASSES)
    files = {entry["file"]: entry for entry in json.loads(results.attrs["import_files"])}
    for (site, day, created), rows in PUBLISHED.items():
        entry = files[str(paths[(site, day)])]
        assert entry["created"] == created  # the stamp is provenance, kept per file
        assert entry["provenance"] == [f"File created on {created}"]
        assert entry["producer"] == PUBLISHED_LINE and entry["rows"] == len(rows)

    store = tmp_path / "s.zarr"
    summary = auroradask.to_zarr(results, store)
    assert summary.written == 4 * DAY_SLOTS  # every site-day has a file, the empty one too
    stored = auroradask.open_results(store)
    assert stored.attrs["model_file"] == PUBLISHED_LINE
    start = pd.Timestamp("2014-03-10")
    for (site, day, _), rows in PUBLISHED.items():
        got = stored.sel(site=site)
        for hhmmss, index, name, confidence in rows:
            i = int((pd.Timestamp(f"{day} {hhmmss}") - start).total_seconds()) // 3
            assert got["label"].values[i] == index and PUBLISHED_CLASSES[index] == name
            assert got["confidence"].values[i] == np.float32(confidence)
            assert got["timestamp"].values[i] == np.datetime64(pd.Timestamp(f"{day} {hhmmss}"))
            assert got["frame_status"].values[i] == OK
    labels = stored["label"].values
    assert (labels >= 0).sum() == sum(len(rows) for rows in PUBLISHED.values())
    fsmi_day2 = stored["frame_status"].sel(site="fsmi").values[DAY_SLOTS:]
    assert (fsmi_day2 == FRAME_MISSING).all()  # the empty file: the night had no frame


def test_a_later_file_of_the_same_model_extends_the_store(tmp_path):
    published_archive(tmp_path / "in")
    store = tmp_path / "s.zarr"
    auroradask.to_zarr(auroradask.import_text(tmp_path / "in"), store)
    later = write_published(
        tmp_path / "later",
        "gill",
        "20140312",
        [("03:00:00", 3, "bad_viewing", 0.5)],
        created="2024-01-02 03:04:05",
    )
    auroradask.to_zarr(auroradask.import_text(later, classes=PUBLISHED_CLASSES), store)
    files = json.loads(auroradask.open_results(store).attrs["import_files"])
    assert len(files) == 5 and files[-1]["created"] == "2024-01-02 03:04:05"


def test_a_file_of_a_model_with_other_classes_is_refused_naming_both(tmp_path):
    paths = published_archive(tmp_path)
    other = write_published(
        tmp_path,
        "rank",
        "20140310",
        [("05:00:00", 2, "other_aurora", 0.7), ("05:00:03", 1, "pulsating", 0.7)],
        created="2023-07-05 10:00:00",
    )
    with pytest.raises(InputDataError) as error:
        auroradask.import_text(tmp_path)
    message = str(error.value)
    assert "class index 1 has several names" in message
    assert f"'pulsating' in {other}" in message
    assert f"'other_aurora' in {paths[('gill', '20140310')]} and 1 more file;" in message
    assert "different models" in message
    with pytest.raises(InputDataError, match="several names"):  # no producer= lets it in
        auroradask.import_text(tmp_path, producer="one model")


def test_a_file_whose_producer_line_names_another_model_is_refused(tmp_path):
    paths = published_archive(tmp_path)
    line = "This file contains the predictions generated by the model resnet50-v2."
    other = write_published(
        tmp_path, "rank", "20140310", [("05:00:00", 0, "no_aurora", 0.7)], second_line=line
    )
    with pytest.raises(InputDataError) as error:
        auroradask.import_text(tmp_path)
    message = str(error.value)
    assert message.startswith("the files name 2 producers")
    assert f"{PUBLISHED_LINE!r} (4 files, e.g. {paths[('fsmi', '20140310')]})" in message
    assert f"{line!r} (1 file, {other})" in message
    assert "pass producer=" in message
    results = auroradask.import_text(tmp_path, producer="published classifier, two versions")
    assert results.attrs["model_file"] == "published classifier, two versions"
    assert json.loads(results.attrs["import_producers"]) == sorted([PUBLISHED_LINE, line])


def test_a_file_with_only_a_creation_stamp_has_no_producer_line(tmp_path):
    path = tmp_path / "20140310_gill_classifications.txt"
    path.write_text(
        "# File created on 2023-07-04 15:06:24\n\ndate,time,prediction,prediction_str,"
        "confidence\n20140310,06:00:00,0,no_aurora,0.5\n"
    )
    other = write_published(tmp_path, "gill", "20140311", [("06:00:00", 0, "no_aurora", 0.5)])
    with pytest.raises(InputDataError, match=r"2 producers: '' \(1 file"):
        auroradask.import_text([path, other])
    assert auroradask.import_text(path).attrs["model_file"] == ""


def test_bulk_and_line_readers_agree_on_every_form(tmp_path):
    """The bulk reader (Arrow) takes the plain form; the line reader the rest. On the same
    rows both give the same values, and a variant the bulk reader passes over (spaces after
    commas, a comment between rows, CRLF line ends, a BOM) still reads the same."""
    from auroradask.io._textfiles import _read_bulk, _read_by_line, read_text

    written = realistic_archive(tmp_path / "r")
    assert written
    for path in sorted((tmp_path / "r").rglob("*.txt")):
        data = path.read_bytes()
        day = path.name[:8]
        bulk, by_line = _read_bulk(data, day), _read_by_line(str(path), day, data)
        assert bulk is not None
        for a, b in zip(bulk[1:4], by_line[1:4], strict=True):
            np.testing.assert_array_equal(a, b)
        assert sorted(bulk[4]) == sorted(by_line[4]) and bulk[0] == by_line[0]

    plain = write_published(tmp_path / "p", "gill", "20140310", PUBLISHED[PUBLISHED_KEY])
    reference = read_text(plain)
    text = plain.read_text()
    variants = {
        "spaces": text.replace(",", ", "),
        "comment": text.replace("\n20140310,06:00:04", "\n# a note\n20140310,06:00:04"),
        "crlf": text.replace("\n", "\r\n"),
        "bom": "\ufeff" + text,
    }
    for name, variant in variants.items():
        plain.write_text(variant)
        got = read_text(plain)
        for field in ("seconds", "prediction", "confidence"):
            np.testing.assert_array_equal(getattr(got, field), getattr(reference, field), name)
        assert got.info.producer == PUBLISHED_LINE, name


PUBLISHED_KEY = ("gill", "20140310", "2023-07-04 15:06:24")


def test_export_then_import_keeps_every_class_and_the_whole_store(tmp_path):
    """The demo model labels the sample bad_viewing throughout: the exported files' rows name
    one class, their header all four. The imported store must have all four (κ over one class
    would say 1.000 for any model), and the same labels, confidences and statuses."""
    from tests.support.utils import classify_sample

    store = tmp_path / "classified.zarr"
    auroradask.to_zarr(classify_sample(), store, progress=False)
    original = auroradask.open_results(store)
    labels = original["label"].values
    assert len(np.unique(labels[labels >= 0])) == 1  # the case that lost classes
    auroradask.export_text(original, tmp_path / "text")
    imported_store = tmp_path / "imported.zarr"
    auroradask.to_zarr(auroradask.import_text(tmp_path / "text"), imported_store, progress=False)
    imported = auroradask.open_results(imported_store)
    assert list(imported["class"].values) == list(original["class"].values)
    assert list(imported["site"].values) == list(original["site"].values)
    written = original["frame_status"].values >= 0
    for name in ("label", "frame_status"):
        np.testing.assert_array_equal(
            imported[name].sel(time=original["time"]).values[written],
            original[name].values[written],
        )
    np.testing.assert_allclose(
        imported["confidence"].sel(time=original["time"]).values[written],
        original["confidence"].values[written],
        atol=5e-5,  # the text files keep 4 decimals
    )


# ------------------------------------------- files as they come: broken, empty, fixed, huge
# Each in the published form (write_published: "# File created on ...", the model line, a
# blank line, the header, rows), then altered as a file from elsewhere can be.


def _import_cli(paths, store, capsys) -> tuple[int, list[str]]:
    from auroradask.cli.main import main

    code = main(["import-text", *map(str, paths), "-o", str(store), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


ROW = "20140310,06:00:00,0,no_aurora,0.8"  # the second row: line 6 of the file


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (ROW + ",extra", "6 fields in"),
        ('20140310,06:00:00,0,"no_aurora,0.8', "a quote that does not close"),
        ('20140310,06:00:00,0,"no_aurora,0.8\n20140310,06:00:01,3,bad_viewing",0.7', "quote"),
    ],
    ids=["six-fields", "open-quote", "quote-over-two-lines"],
)
def test_a_broken_row_mid_file_is_one_line_naming_file_and_line(tmp_path, capsys, row, message):
    """A row of six fields or an unbalanced quote, in the middle of a published file: one
    line naming the file and the line, from the API and the command (no pandas traceback)."""
    path = write_published(tmp_path / "in", "gill", "20140310", PUBLISHED[PUBLISHED_KEY])
    text = path.read_text()
    assert text.splitlines()[5] == ROW
    path.write_text(text.replace(ROW, row))
    with pytest.raises(InputDataError) as error:
        auroradask.import_text(path)
    assert str(error.value).startswith(f"{path}:6: ") and message in str(error.value)
    assert len(str(error.value).splitlines()) == 1
    code, err = _import_cli([path], tmp_path / "s.zarr", capsys)
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith(f"auroradask: failed: {path}:6: ") and "Traceback" not in err[0]
    assert not (tmp_path / "s.zarr").exists()


def test_a_byte_order_mark_is_read_by_the_command(tmp_path, capsys):
    """Windows editors save UTF-8 with a byte-order mark: the file imports as without."""
    path = write_published(tmp_path / "in", "gill", "20140310", PUBLISHED[PUBLISHED_KEY])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    code, err = _import_cli([path], tmp_path / "s.zarr", capsys)
    assert code == 0, err
    stored = auroradask.open_results(tmp_path / "s.zarr")
    assert (stored["label"].values >= 0).sum() == len(PUBLISHED[PUBLISHED_KEY])
    assert stored.attrs["model_file"] == PUBLISHED_LINE


@pytest.mark.parametrize("content", [b"", b"\n \r\n\t\n"], ids=["0-bytes", "white-space"])
def test_an_empty_file_imported_first_leaves_its_day_to_the_real_file(tmp_path, capsys, content):
    """A 0-byte file, or one of white space only (its writer died), says nothing of its day:
    imported with other files it is listed as empty and its day stays not written, so the
    day's real file, imported later, fills it; imported alone it is refused (nothing to
    import, no producer)."""
    empty = write_published(tmp_path / "a", "gill", "20140310", [])
    empty.write_bytes(content)
    other = write_published(
        tmp_path / "a", "gill", "20140311", [("02:00:02", 1, "other_aurora", 0.75)]
    )
    store = tmp_path / "s.zarr"
    code, err = _import_cli([empty], store, capsys)
    assert code == 1 and len(err) == 1 and err[0].startswith(f"auroradask: failed: {empty}: empty")
    assert not store.exists()

    code, err = _import_cli(
        [tmp_path / "a", "--classes", ",".join(PUBLISHED_CLASSES)], store, capsys
    )
    assert code == 0, err
    stored = auroradask.open_results(store)
    assert stored.attrs["model_file"] == PUBLISHED_LINE  # the empty file names no producer
    assert (stored["frame_status"].values[0, :DAY_SLOTS] == NOT_WRITTEN).all()
    listed = json.loads(stored.attrs["import_files"])
    assert [(e["file"], e.get("empty", False)) for e in listed] == [
        (str(empty), True),
        (str(other), False),
    ]

    real = write_published(tmp_path / "b", "gill", "20140310", PUBLISHED[PUBLISHED_KEY])
    code, err = _import_cli([real, "--classes", ",".join(PUBLISHED_CLASSES)], store, capsys)
    assert code == 0, err
    stored = auroradask.open_results(store)
    day = stored["label"].values[0, :DAY_SLOTS]
    for hhmmss, index, _, _ in PUBLISHED[PUBLISHED_KEY]:
        assert day[slot("20140310", hhmmss)] == index
    assert (day >= 0).sum() == len(PUBLISHED[PUBLISHED_KEY])
    assert json.loads(stored.attrs["import_files"])[-1]["file"] == str(real)


def test_a_corrected_file_for_an_imported_day_is_refused_not_listed(tmp_path, capsys):
    """The store keeps a day's first import (a write skips slots already written): a
    corrected file for that day is refused naming both files, and the store is unchanged
    (before, it was listed in import_files but not one of its rows was written)."""
    first = write_published(tmp_path / "a", "gill", "20140310", PUBLISHED[PUBLISHED_KEY])
    store = tmp_path / "s.zarr"
    auroradask.to_zarr(auroradask.import_text(first), store, progress=False)
    before = auroradask.open_results(store).load()
    fixed = write_published(
        tmp_path / "b",
        "gill",
        "20140310",
        [(t, 3, "bad_viewing", c) for t, _, _, c in PUBLISHED[PUBLISHED_KEY]],
        created="2023-08-01 10:00:00",
    )
    with pytest.raises(auroradask.StoreError) as error:
        auroradask.to_zarr(auroradask.import_text(fixed, classes=PUBLISHED_CLASSES), store)
    message = str(error.value)
    assert len(message.splitlines()) == 1 and message.startswith(f"store: {store} holds site gill")
    assert str(first) in message and str(fixed) in message and "new store" in message
    code, err = _import_cli([fixed, "--classes", ",".join(PUBLISHED_CLASSES)], store, capsys)
    assert code == 2 and len(err) == 1 and str(fixed) in err[0]
    after = auroradask.open_results(store)
    assert after.attrs["import_files"] == before.attrs["import_files"]
    np.testing.assert_array_equal(after["label"].values, before["label"].values)
    # the same file again (a resume) is no correction: nothing new, nothing refused
    assert auroradask.to_zarr(auroradask.import_text(first), store).written == 0


def test_a_file_too_large_for_a_day_is_refused_by_its_size_before_it_is_read(tmp_path, monkeypatch):
    """Refused by its size: a day's file is about 1.5 MB, one of gigabytes is not read (it
    was read whole, 4.3 GB of memory, before being refused)."""
    import auroradask.io._textfiles as textfiles

    path = write_published(tmp_path, "gill", "20140310", PUBLISHED[PUBLISHED_KEY])
    size = path.stat().st_size
    monkeypatch.setattr(textfiles, "MAX_FILE_BYTES", size - 1)
    reads = []
    real_open = open

    def counting_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if str(file) == str(path):
            real_read = handle.read
            handle = _Reads(handle, real_read, reads)
        return handle

    monkeypatch.setattr("builtins.open", counting_open)
    with pytest.raises(InputDataError) as error:
        auroradask.import_text(path)
    assert str(error.value) == (
        f"{path}: {size:,} bytes, more than a classifications file of one site and day can "
        f"be (at most {size - 1:,}); not read"
    )
    assert reads == []  # refused by its size alone


class _Reads:
    """A file whose reads are counted."""

    def __init__(self, handle, read, reads):
        self._handle, self._read, self._reads = handle, read, reads

    def read(self, *args):
        self._reads.append(args)
        return self._read(*args)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


def test_a_sparse_file_of_two_gigabytes_is_refused_at_once(tmp_path):
    path = write_published(tmp_path, "gill", "20140310", PUBLISHED[PUBLISHED_KEY])
    with open(path, "r+b") as f:
        f.truncate(2 * 2**30)  # sparse: no disk, no memory
    with pytest.raises(InputDataError, match=r"2,147,483,648 bytes, .*; not read$"):
        auroradask.import_text(path)
