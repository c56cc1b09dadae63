"""What a results store is on disk, and how it is created and grown without ever being broken.

A store (layout 2) is one Zarr group, Zarr format 3, with consolidated metadata:

- ``label``, ``confidence``, ``probability``, ``timestamp`` and ``frame_status`` on a
  ``(site, time[, class])`` grid whose time axis covers whole UT days of 3-second slots, in
  chunks of one site-day (28,800 slots): one file per site-day per variable, which is what
  makes a site-year of labels quick to read;
- any *extra variables* the results carry on ``(site, time, ...)`` (a keogram row per frame,
  an embedding per frame), chunked the same way and whole along their own dimensions; the
  set of them is fixed when the store is created;
- ``frame_status`` is ``-1`` (its fill value) where nothing was written, so unwritten padding
  is never mistaken for frames that were not classified;
- coordinates ``site``, ``time`` (int64 seconds, chunks of 32 days), ``class``, ``imager``, ``latitude``,
  ``longitude``; CF attributes; the provenance of the results; ``auroradask_store_layout``.

Readers go through the consolidated metadata only, so a store changes for them in one step:
when that single object is rewritten. Creation and extension write an *intent* object first
(``<group>.intent.json`` beside the group) and remove it last; a writer that finds one left by
a killed run finishes or redoes that step before anything else, so every crash point leaves a
store that opens and resumes.

A folder is *provably this store's own* when its group metadata (``zarr.json``) carries the
attribute ``auroradask_store_id``: a random token that the creation writes into the folder
first (the group, before anything else), that every later rewrite of the group's
attributes keeps, and that the creation's intent records too. Only such a folder is ever
removed. A folder without it, next to a creation's intent (an intent left by a killed run,
copied, or stray), may hold a user's files and is never touched.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from .._config import storage_options_for
from .._results import not_site_codes
from .._schema import (
    DAY_SLOTS,
    NOT_CLASSIFIED,
    NOT_WRITTEN,
    RESULT_VARIABLES,
    SITE_CODE,
    SLOT,
    SLOT_SECONDS,
    frame_status_attrs,
    label_attrs,
)
from ..errors import ArgumentError, StoreError
from ._imports import merged_import_files

LAYOUT = 2
LAYOUT_ATTR = "auroradask_store_layout"
INTENT_SUFFIX = ".intent.json"
#: The group attribute its creation writes into a store's folder first: the proof that the
#: folder is the store's own (see the module's docstring), and may be removed.
STORE_ID_ATTR = "auroradask_store_id"
#: Attributes that must agree between a store and new results written into it.
IDENTITY_ATTRS = ("model_sha256", "preset")
TIME_UNITS = "seconds since 1970-01-01 00:00:00"
#: Days per chunk of the time coordinate: readers load it whole (it is the index), and 12
#: chunks a year read much faster than 365; growing by a day rewrites at most one chunk.
TIME_CHUNK_DAYS = 32
TIMESTAMP_UNITS = "microseconds since 1970-01-01 00:00:00"
_NAT = np.iinfo(np.int64).min
#: What a slot never written reads as (Zarr fill values: nothing is stored for it).
FILL = {
    "label": NOT_CLASSIFIED,
    "confidence": np.float32(np.nan),
    "probability": np.float32(np.nan),
    "timestamp": np.datetime64("NaT", "ns"),
    "frame_status": NOT_WRITTEN,
}
ACKNOWLEDGEMENT = (
    "THEMIS ASI data: NASA contract NAS5-02099, V. Angelopoulos; S. Mende and E. Donovan for "
    "the ASI data; the CSA for logistical support; NSF for GIMNAST (AGS-1004736)."
)


@contextmanager
def quiet_zarr():
    """Hide zarr's notice that consolidated metadata is not in the v3 spec (we rely on it),
    and its notice, when the root of a store with groups is consolidated, that the groups'
    lock and intent files beside them are no Zarr objects (they are not meant to be)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        warnings.filterwarnings("ignore", message=r"Object at .*\.(lock|intent\.json)")
        yield


@dataclass
class StoreLocation:
    """Where a store is: its URL as the user gave it (made absolute), group and filesystem."""

    url: str
    group: str | None
    storage_options: dict[str, Any]
    fs: fsspec.AbstractFileSystem = field(repr=False)
    root: str  # the group's folder on ``fs``

    @property
    def is_local(self) -> bool:
        return _is_local(self.fs)

    @property
    def staging(self) -> str:
        """Folder beside the group holding the pieces of site-days not compacted yet."""
        return f"{self.root}.staging"

    @property
    def intent(self) -> str:
        """The record of a creation or extension in progress, beside the group."""
        return f"{self.root}{INTENT_SUFFIX}"

    def zarr_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"group": self.group}
        if self.storage_options:
            kwargs["storage_options"] = self.storage_options
        return kwargs

    def open_group(self, mode: str = "r+", consolidated: bool = False) -> zarr.Group:
        """The group through zarr itself (for metadata work: resize, consolidate).

        ``consolidated``: with its consolidated metadata, which a rewrite of the group's
        attributes then keeps (in the same object, written in one step).
        """
        return zarr.open_group(
            self.url,
            path=self.group or "",
            mode=mode,
            storage_options=self.storage_options or None,
            zarr_format=3,
            use_consolidated=consolidated,
        )


def locate(
    store: str | os.PathLike, group: str | None, storage_options: dict[str, Any] | None
) -> StoreLocation:
    """Resolve ``store`` so that workers anywhere write to the same place.

    A local path is made absolute here, on the client: a relative path would otherwise be
    resolved in each worker's own working directory.
    """
    url = os.fspath(store)
    if not url:
        raise ArgumentError("store: an empty string is not a path or URL")
    if "://" not in url:
        url = os.path.abspath(url)
    if group is not None and not SITE_CODE.fullmatch(group.replace("_", "").replace("-", "")):
        raise ArgumentError(f"group: {group!r} must be lower-case letters, digits, '_' or '-'")
    options = storage_options_for(url, storage_options)  # over auroradask.storage-options
    try:
        fs, root = fsspec.url_to_fs(url, **options)
    except (ValueError, ImportError) as error:
        raise ArgumentError(f"store: cannot open {url!r}: {error}") from None
    root = root.rstrip("/")
    if group:
        root = f"{root}/{group}"
    return StoreLocation(url, group, options, fs, root)


# ----------------------------------------------------------------------------------- state


@dataclass
class StoreState:
    """What the consolidated metadata of a store says."""

    layout: int
    sites: list[str]
    times: np.ndarray  # datetime64[ns], whole UT days
    classes: list[str]
    attrs: dict[str, Any]
    dataset: xr.Dataset  # lazily opened, for the old layout's upgrade
    extras: list[str] = field(default_factory=list)  # extra variables, in the store's order

    @property
    def variables(self) -> list[str]:
        """Every variable written per slot, ``frame_status`` last (a slot with a status is
        done, so it is written after everything else)."""
        first = [v for v in RESULT_VARIABLES if v != "frame_status"]
        return first + self.extras + ["frame_status"]

    @property
    def first_day(self) -> pd.Timestamp:
        return pd.Timestamp(self.times[0])


def read_state(loc: StoreLocation) -> StoreState | None:
    """The store at ``loc`` as readers see it, or None if there is none."""
    try:
        with quiet_zarr():
            ds = xr.open_zarr(loc.url, consolidated=True, chunks=None, **loc.zarr_kwargs())
    except (FileNotFoundError, KeyError, ValueError):
        return None
    if "label" not in ds or "time" not in ds.coords:
        return None
    check_store_sites(ds, loc.url)
    return StoreState(
        layout=int(ds.attrs.get(LAYOUT_ATTR, 1)),
        sites=[str(s) for s in ds["site"].values],
        times=ds["time"].values,
        classes=[str(c) for c in ds["class"].values],
        attrs=dict(ds.attrs),
        dataset=ds,
        extras=extra_variables(ds),
    )


def check_store_sites(ds: xr.Dataset, url: str) -> None:
    """Refuse a store whose site names are not site codes: they would become file names and
    page text (``../../x``, ``</script>``); auroradask never writes such a store."""
    bad = not_site_codes(ds["site"].values) if "site" in ds.coords else []
    if bad:
        raise StoreError(
            f"store: {url} holds site names that are not site codes (lower-case letters and "
            f"digits): {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}; auroradask does "
            "not write such names, so the store was altered or made elsewhere: not read"
        )


def extra_variables(ds: xr.Dataset) -> list[str]:
    """The data variables of ``ds`` on ``(site, time, ...)`` other than the result variables,
    sorted: what a store keeps beside the labels (``keogram``, ``embedding``)."""
    return sorted(
        str(name)
        for name, var in ds.data_vars.items()
        if var.dims[:2] == ("site", "time")
        and name not in RESULT_VARIABLES
        and name != "write_complete"  # the first release's layout
    )


def extra_fill(dtype: np.dtype) -> Any:
    """What an unwritten slot of an extra variable reads as: NaN for floats, -1 for signed
    integers (as ``label``: counts and indices are never negative), 0 for unsigned ones
    (pixel values); ``frame_status`` says which slots were written."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype.type(np.nan)
    return dtype.type(-1) if dtype.kind == "i" else dtype.type(0)


def has_intent(loc: StoreLocation) -> dict[str, Any] | None:
    try:
        return json.loads(loc.fs.cat_file(loc.intent))
    except FileNotFoundError:
        return None
    except ValueError:
        # intents are written whole, so this one was damaged by something else: guessing
        # its step could delete results
        raise StoreError(
            f"store: {loc.intent} is not readable JSON; look at it, and delete it if the "
            "store opens and holds what you expect"
        ) from None


def write_bytes(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write a whole object at once: temp file and rename on a local disk, one PUT elsewhere.

    Either the old or the new content is ever seen, never a partial one; a write that fails
    (a full disk) takes its temporary file away with it.
    """
    if _is_local(fs):
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        write_whole(path, data, f"{path}.{os.urandom(6).hex()}.partial")
    else:
        fs.pipe_file(path, data)


def write_whole(path: str, data: bytes, tmp: str, link: bool = False) -> None:
    """Write ``data`` to the local file ``tmp``, then rename it to ``path`` (or, with
    ``link``, hard-link it there: fails if ``path`` exists, and ``tmp`` stays); ``tmp`` is
    removed if anything fails on the way."""
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        (os.link if link else os.replace)(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove(fs: fsspec.AbstractFileSystem, path: str) -> None:
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocol = fs.protocol
    return bool(({protocol} if isinstance(protocol, str) else set(protocol)) & {"file", "local"})


# ------------------------------------------------------------------------ create and extend


def day_axis(first: np.datetime64, last: np.datetime64) -> np.ndarray:
    """3-second slots of the whole UT days from ``first``'s day to ``last``'s day."""
    start = pd.Timestamp(first).floor("D")
    stop = pd.Timestamp(last).floor("D") + pd.Timedelta(days=1)
    return np.arange(start.to_datetime64(), stop.to_datetime64(), SLOT, dtype="datetime64[ns]")


def site_coords(results: xr.Dataset, sites: list[str]) -> dict[str, list]:
    """Imager, latitude and longitude of ``sites`` as ``results`` give them (None if not)."""
    out: dict[str, list] = {}
    known = [str(s) for s in results["site"].values]
    for name in ("imager", "latitude", "longitude"):
        values = dict(zip(known, results[name].values, strict=True)) if name in results else {}
        missing = "" if name == "imager" else np.nan
        out[name] = [_plain(values.get(s, missing)) for s in sites]
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def template(results: xr.Dataset, sites: list[str], times: np.ndarray) -> xr.Dataset:
    """The empty store: every variable lazily filled with its fill value, CF attributes."""
    import dask.array as da

    n_classes = results.sizes["class"]
    classes = [str(c) for c in results["class"].values]
    shape = (len(sites), len(times))

    def full(name, dtype, extra=()):
        # one dask chunk: the template is never computed, only its metadata is written
        return da.full(shape + extra, FILL[name], dtype=dtype, chunks=-1)

    coords = site_coords(results, sites)
    extras = {}
    for name in extra_variables(results):
        var = results[name]
        trailing = var.shape[2:]
        extras[name] = (
            var.dims,
            da.full(shape + trailing, extra_fill(var.dtype), dtype=var.dtype, chunks=-1),
            dict(var.attrs),
        )
    ds = xr.Dataset(
        {
            "label": (("site", "time"), full("label", np.int8)),
            "confidence": (("site", "time"), full("confidence", np.float32)),
            "probability": (
                ("site", "time", "class"),
                full("probability", np.float32, (n_classes,)),
            ),
            "timestamp": (("site", "time"), full("timestamp", "datetime64[ns]")),
            "frame_status": (("site", "time"), full("frame_status", np.int8)),
            **extras,
        },
        coords={
            "site": ("site", np.array(sites, dtype=object)),
            "time": ("time", times),
            "class": ("class", np.array(classes, dtype=object)),
            "imager": ("site", np.array(coords["imager"], dtype=object)),
            "latitude": ("site", np.array(coords["latitude"], dtype=np.float64)),
            "longitude": ("site", np.array(coords["longitude"], dtype=np.float64)),
        },
    )
    for name in extras:  # coordinates of their own dimensions, if the results have them
        for dim in results[name].dims[2:]:
            if dim in results.coords and dim not in ds.coords:
                ds = ds.assign_coords({dim: results[dim].values})
    apply_cf(ds, classes)
    ds.attrs = store_attrs(results.attrs)
    return ds


def store_attrs(provenance: dict[str, Any]) -> dict[str, Any]:
    """The group's attributes: the results' provenance plus CF and layout attributes."""
    # a store's identity is its own: results read from another store carry that one's
    attrs = {
        k: v for k, v in provenance.items() if k not in ("Conventions", LAYOUT_ATTR, STORE_ID_ATTR)
    }
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    attrs.update(
        {
            "Conventions": "CF-1.10",
            "featureType": "timeSeries",
            "title": provenance.get("title", "THEMIS ASI frame classification"),
            "source": str(provenance.get("source", "")),
            "acknowledgement": ACKNOWLEDGEMENT,
            "history": f"{created} created by auroradask",
            LAYOUT_ATTR: LAYOUT,
        }
    )
    return attrs


def apply_cf(ds: xr.Dataset, classes: list[str]) -> xr.Dataset:
    """CF attributes on every variable and coordinate of a results dataset (in place).

    Kept here so that a store read back gets the same attributes, with their dtypes (JSON
    metadata keeps no dtype: ``flag_values`` would come back as plain integers).
    """
    ds["label"].attrs = label_attrs(classes)
    ds["confidence"].attrs = {"long_name": "probability of the chosen class", "units": "1"}
    ds["probability"].attrs = {"long_name": "class probabilities", "units": "1"}
    ds["timestamp"].attrs = {"long_name": "Image request start of the frame (UT)"}
    status = frame_status_attrs()
    ds["frame_status"].attrs = {
        **status,
        "flag_values": np.r_[np.int8(NOT_WRITTEN), status["flag_values"]].astype(np.int8),
        "flag_meanings": "not_written " + status["flag_meanings"],
    }
    ds["time"].attrs = {
        "standard_name": "time",
        "long_name": "nominal 3-second frame slot (UT)",
        "axis": "T",
    }
    ds["site"].attrs = {"long_name": "THEMIS ASI site code", "cf_role": "timeseries_id"}
    ds["class"].attrs = {"long_name": "class name, in the order of the label's flag_values"}
    if "imager" in ds.coords:
        ds["imager"].attrs = {"long_name": "imager unique ID"}
    if "latitude" in ds.coords:
        ds["latitude"].attrs = {
            "standard_name": "latitude",
            "units": "degrees_north",
            "long_name": "geodetic latitude of the site",
        }
    if "longitude" in ds.coords:
        ds["longitude"].attrs = {
            "standard_name": "longitude",
            "units": "degrees_east",
            "long_name": "geodetic longitude of the site",
        }
    return ds


def encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Chunks of one site-day, fill values, CF time units."""
    enc: dict[str, dict[str, Any]] = {}
    for name in [*RESULT_VARIABLES, *extra_variables(ds)]:
        var = ds[name]
        enc[name] = {"chunks": (1, DAY_SLOTS, *var.shape[2:])}
        if name in ("label", "frame_status"):
            enc[name]["fill_value"] = FILL[name]
        elif name not in RESULT_VARIABLES:
            enc[name]["fill_value"] = extra_fill(var.dtype)
    enc["timestamp"].update(units=TIMESTAMP_UNITS, dtype="int64", _FillValue=_NAT, fill_value=_NAT)
    enc["time"] = {"units": TIME_UNITS, "dtype": "int64", "chunks": (TIME_CHUNK_DAYS * DAY_SLOTS,)}
    return enc


def create(loc: StoreLocation, results: xr.Dataset, sites: list[str], times: np.ndarray) -> None:
    """Create the store: intent first, the group with its identity, the metadata and the
    consolidated metadata, the intent removed last.

    The caller has made sure that the folder is absent or empty, so that everything in it
    after the group is this creation's: the group's ``auroradask_store_id``, also in the
    intent, is what lets a resumed creation remove a half-made store (and nothing else).
    """
    token = os.urandom(8).hex()
    write_bytes(loc.fs, loc.intent, json.dumps({"step": "create", "token": token}).encode())
    zarr.open_group(
        loc.url,
        path=loc.group or "",
        mode="w-",
        storage_options=loc.storage_options or None,
        zarr_format=3,
        attributes={STORE_ID_ATTR: token},
    )
    ds = template(results, sites, times)
    ds.attrs[STORE_ID_ATTR] = token  # kept by each rewrite of the group's metadata
    with quiet_zarr():
        ds.to_zarr(
            loc.url,
            mode="a",
            encoding=encoding(ds),
            consolidated=True,
            compute=False,
            zarr_format=3,
            **loc.zarr_kwargs(),
        )
    remove(loc.fs, loc.intent)


def discard_unfinished_creation(loc: StoreLocation, intent: dict[str, Any] | None = None) -> None:
    """Remove what a killed creation left (metadata only, no results), or an empty store that
    is made again; never a folder that is not provably this store's own.

    ``intent`` is the creation's intent when one is being finished: the folder's group must
    then carry the intent's token. Without it (an empty store made again for other classes),
    the group must carry a token, or, for stores made before tokens, the folder must hold
    nothing but Zarr's own files.
    """
    if read_state(loc) is not None and holds_results(loc):
        raise StoreError(
            f"store: {loc.intent} says a creation was interrupted, but {loc.url} holds "
            "results; remove the intent file if the store is what you expect"
        )
    if loc.fs.exists(loc.root):
        token = None if intent is None else intent.get("token", "")
        owned = owned_by_creation(loc, token)
        if owned is None:
            raise StoreError(
                f"store: {loc.url} is not provably made by the creation that {loc.intent} "
                f"records (its group has no {STORE_ID_ATTR} of that creation), so nothing "
                f"was removed; if the folder holds nothing of yours, delete it and the "
                "intent file, else delete only the intent file and write elsewhere"
            )
        if owned:
            loc.fs.rm(loc.root, recursive=True)
        else:  # an empty folder, perhaps the user's: its temporary files go, it stays
            for path in loc.fs.ls(loc.root, detail=False):
                remove(loc.fs, path)
    remove(loc.fs, loc.intent)


def owned_by_creation(loc: StoreLocation, token: str | None) -> bool | None:
    """Whether the folder at ``loc`` is provably this store's own.

    True: its group carries ``auroradask_store_id`` (equal to ``token``, if one is given;
    ``""``, the token of an intent written before tokens, matches none), or, when no token
    is asked for, it holds only Zarr's files. False: it holds nothing but, at most, the
    temporary file of its group's metadata (a creation killed while writing it): nothing
    to remove but that file. None: anything else, which is never removed.
    """
    try:
        group = json.loads(loc.fs.cat_file(f"{loc.root}/zarr.json"))
        have = group["attributes"][STORE_ID_ATTR]
    except (FileNotFoundError, ValueError, OSError, KeyError, TypeError):
        have = None
    if isinstance(have, str) and have:
        return True if token is None or have == token else None
    names = [p.rstrip("/").rsplit("/", 1)[-1] for p in loc.fs.ls(loc.root, detail=False)]
    if all(n.startswith("zarr.") and n.endswith(".partial") for n in names):
        return False
    if token is None and _only_zarr_files(loc):
        return True
    return None


def _only_zarr_files(loc: StoreLocation) -> bool:
    """Whether every file under the folder is Zarr's: ``zarr.json`` files, chunks in the
    ``c`` folder of an array, or Zarr's temporary files (a store made before tokens)."""
    root = loc.root.rstrip("/")
    for path in loc.fs.find(root):
        parts = path[len(root) :].strip("/").split("/")
        name = parts[-1]
        if name == "zarr.json" or "c" in parts[1:-1] or name.endswith(".partial"):
            continue
        return False
    return True


def extend(
    loc: StoreLocation,
    sites: list[str],
    coords: dict[str, list],
    n_time: int,
    first_time: np.datetime64,
    known_n_time: int,
    extras: list[str] = (),
) -> None:
    """Grow the store to ``sites`` and ``n_time`` slots; safe to run again after a crash.

    Every step writes a deterministic target (shapes, coordinate values), so repeating it is
    harmless; readers see the old store until the consolidated metadata is rewritten last.
    """
    intent = {
        "step": "extend",
        "sites": sites,
        "n_time": int(n_time),
        "known_n_time": int(known_n_time),
        "extras": list(extras),
        **coords,
    }
    intent["first_time"] = str(np.datetime64(first_time, "s"))
    write_bytes(loc.fs, loc.intent, json.dumps(intent).encode())
    _apply_extension(loc, intent)
    remove(loc.fs, loc.intent)


def _apply_extension(loc: StoreLocation, intent: dict[str, Any]) -> None:
    group = loc.open_group()
    sites, n_time = intent["sites"], intent["n_time"]
    first = np.datetime64(intent["first_time"], "s")
    # coordinate values first (beyond the shapes readers know, so invisible to them) ...
    values = {
        "site": np.array(sites, dtype=object),
        "imager": np.array(intent["imager"], dtype=object),
        "latitude": np.array(intent["latitude"], dtype=np.float64),
        "longitude": np.array(intent["longitude"], dtype=np.float64),
    }
    for name, value in values.items():
        if group[name].shape != value.shape:
            group[name].resize(value.shape)
        group[name][:] = value
    if group["time"].shape[0] != n_time:
        group["time"].resize((n_time,))
    # from the length readers knew: a redo must rewrite what a killed run resized but left
    old = intent["known_n_time"]
    seconds = first.astype(np.int64) + SLOT_SECONDS * np.arange(old, n_time, dtype=np.int64)
    group["time"][old:] = seconds
    # ... then the data arrays' shapes, then the one object readers switch on
    for name in [*RESULT_VARIABLES, *intent.get("extras", [])]:
        array = group[name]
        shape = (len(sites), n_time, *array.shape[2:])
        if array.shape != shape:
            array.resize(shape)
    consolidate(loc)


def consolidate(loc: StoreLocation) -> None:
    """Rewrite the consolidated metadata that readers open the store by.

    That is the group's own, and, for a store in a group, also the store root's: xarray
    opens a group through the consolidated metadata at the root of its store, which a
    consolidation of the group alone left stale (the group's new days and sites unseen:
    issue 30). The root's comes last, so a kill in between leaves readers the old store
    and the intent the step to redo.
    """
    group = loc.open_group()
    zarr.consolidate_metadata(group.store, path=group.path, zarr_format=3)
    if loc.group:
        zarr.consolidate_metadata(group.store, path="", zarr_format=3)


def finish_interrupted(loc: StoreLocation) -> None:
    """Complete or undo the creation, extension or attributes update a killed writer left
    half done; repair a store whose attributes update by an earlier release was killed
    before its consolidation."""
    intent = has_intent(loc)
    if intent is None:
        if lost_consolidation(loc):
            consolidate(loc)
        return
    step = intent.get("step")
    if step == "extend":
        _apply_extension(loc, intent)
    elif step == "attrs":
        _apply_attrs(loc, intent["attrs"])
    elif step == "create":
        discard_unfinished_creation(loc, intent)
        return
    else:  # written by a newer release, or by something else: guessing could delete results
        raise StoreError(
            f"store: {loc.intent} records a step {step!r} this release does not know; "
            "finish it with the release that wrote it, or look at it and delete it"
        )
    remove(loc.fs, loc.intent)


def lost_consolidation(loc: StoreLocation) -> bool:
    """Whether the group is a store of this layout whose consolidated metadata is gone, with
    no step in progress: what an attributes update of an earlier release left when killed
    between rewriting the group's metadata and consolidating it (issue 30). Every array's
    metadata is whole then; only the group's object lacks the consolidated copy. (A store in
    a group is read through its root's consolidated metadata, which that update left.)"""
    if loc.group:
        return False
    try:
        meta = json.loads(loc.fs.cat_file(f"{loc.root}/zarr.json"))
    except (FileNotFoundError, ValueError, OSError):
        return False
    if not isinstance(meta, dict) or not isinstance(meta.get("attributes"), dict):
        return False
    return meta["attributes"].get(LAYOUT_ATTR) == LAYOUT and not meta.get("consolidated_metadata")


def adopt_identity(loc: StoreLocation, provenance: dict[str, Any]) -> None:
    """Give a store that holds no result yet the provenance of the results now written (its
    own identity, ``auroradask_store_id``, stays)."""
    attrs = dict(loc.open_group(mode="r").attrs)
    attrs.update(store_attrs(provenance))
    write_attrs(loc, attrs)


def merged_provenance(state: StoreState, results: xr.Dataset, url: str) -> dict[str, Any]:
    """The store's attributes once ``results`` are written into it, or {} if unchanged.

    A store's first write sets its provenance; later writes add to it: the elevation map of
    each new site, the imported files, a history line. A site classified with one field of
    view is not continued with another (its labels would not be comparable).
    """
    attrs = dict(state.attrs)
    changed = False
    have, new = _json(attrs.get("elevation_source")), _json(results.attrs.get("elevation_source"))
    if isinstance(have, dict) and isinstance(new, dict):
        for site, source in new.items():
            if site in have and have[site] != source:
                raise StoreError(
                    f"store: {url} holds site {site!r} classified with the elevation map "
                    f"{have[site]!r}, these results use {source!r}; write them to another "
                    "store or group"
                )
        if set(new) - set(have):
            attrs["elevation_source"] = json.dumps({**have, **new})
            changed = True
    files, more = _json(attrs.get("import_files")), _json(results.attrs.get("import_files"))
    if isinstance(files, list) and isinstance(more, list):
        merged = merged_import_files(files, more, url)  # refuses a corrected file of a day
        if merged is not None:
            attrs["import_files"] = json.dumps(merged)
            changed = True
    if not changed:
        return {}
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    attrs["history"] = f"{attrs.get('history', '')}\n{now} extended by auroradask".strip()
    return attrs


def write_attrs(loc: StoreLocation, attrs: dict[str, Any]) -> None:
    """Replace the group's attributes, safely for readers and for a kill at any point.

    The intent records the step first, so that a writer killed in it redoes it. The group's
    metadata object holds both its attributes and the consolidated metadata that readers
    open the store by: both are rewritten together, in one write (a rename on a local disk,
    one PUT elsewhere), so readers see the old attributes or the new ones, never a store
    without consolidated metadata (which an attributes update followed by a consolidation
    left at a kill between the two: issue 30). A store in a group is read through its
    root's consolidated metadata, rewritten after the group's attributes (see
    :func:`consolidate`): a kill in between leaves readers the old attributes.
    """
    intent = {"step": "attrs", "attrs": attrs}
    write_bytes(loc.fs, loc.intent, json.dumps(intent, default=_json_default).encode())
    _apply_attrs(loc, attrs)
    remove(loc.fs, loc.intent)


def _apply_attrs(loc: StoreLocation, attrs: dict[str, Any]) -> None:
    if loc.group:  # readers see the group's attributes in the root's consolidated copy
        loc.open_group().attrs.put(attrs)
        consolidate(loc)
        return
    if lost_consolidation(loc):  # left by an earlier release: no consolidated copy to keep
        consolidate(loc)
    loc.open_group(consolidated=True).attrs.put(attrs)


def _json_default(value: Any) -> Any:
    """Attribute values JSON does not know, as Zarr writes them: numpy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"attribute value {value!r} cannot be written as JSON")


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def holds_results(loc: StoreLocation) -> bool:
    """Whether any site-day was written or staged (listing only, no data read)."""
    group = loc.open_group(mode="r")
    if group["frame_status"].nchunks_initialized:
        return True
    return loc.fs.exists(loc.staging) and bool(loc.fs.find(loc.staging))


def check_identity(state: StoreState, results: xr.Dataset, url: str) -> None:
    for key in IDENTITY_ATTRS:
        have, new = state.attrs.get(key), results.attrs.get(key)
        if have != new:
            what = "model" if key == "model_sha256" else key
            raise StoreError(
                f"store: {url} holds results of another {what} ({key} {have!r} there, "
                f"{new!r} now); write to a new store or another group"
            )
    classes = [str(c) for c in results["class"].values]
    if state.classes != classes:
        raise StoreError(f"store: {url} has classes {state.classes}, the results {classes}")
