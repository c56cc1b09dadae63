"""Helpers shared by the tests (a plain module, as pooch's ``tests/utils.py``): the real
sample, edited copies of it, small ONNX models with known outputs, store comparisons."""

from __future__ import annotations

import glob
import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import auroradask
from tests.support.archive import relabel_minute

# the CLI in a subprocess, importing this checkout's auroradask (and tests.support)
ENV = {**os.environ, "PYTHONPATH": str(Path(auroradask.__file__).parent.parent)}
COMMAND = [sys.executable, "-m", "auroradask.cli.main"]

SAMPLE_START, SAMPLE_END = "2014-03-10T06:00", "2014-03-10T06:06"
HOUR_DIR = Path("2014/03/10/gill_themis19/ut06")
CLASSES = ["bad_viewing", "no_aurora", "other_aurora", "pulsating"]
#: A real THEMIS skymap (Athabasca); the tests use it for the Gillam frames.
SKYMAP = str(Path(__file__).parents[1] / "data" / "themis_skymap_atha_20230115-+_v02.sav")


#: The real skymap of Gakona (the imager of the L1 CDF test file), valid from 2011-03-05.
def _gunzipped(name: str) -> str:
    """A test file kept gzipped in tests/data (a third of the size), as a plain file under the
    temporary folder, made once (written whole, then renamed: parallel tests never see half)."""
    folder = Path(tempfile.gettempdir()) / "auroradask-tests"
    target = folder / name
    if not target.exists():
        folder.mkdir(exist_ok=True)
        part = target.with_name(f"{name}.{os.getpid()}.part")
        part.write_bytes(
            gzip.decompress((Path(__file__).parents[1] / "data" / f"{name}.gz").read_bytes())
        )
        part.replace(target)
    return str(target)


GAKO_SKYMAP = _gunzipped("themis_skymap_gako_20110305-+_vXX.sav")
#: Every variable a store holds per slot.
STORE_VARIABLES = ["label", "confidence", "probability", "timestamp", "frame_status"]


def sample_files(root: str | os.PathLike | None = None) -> list[str]:
    """The minute files of the sample tree, in time order."""
    root = root or auroradask.sample_archive()
    return sorted(glob.glob(os.path.join(root, "**", "*_full.pgm*"), recursive=True))


def open_sample(
    root=None, start=SAMPLE_START, end=SAMPLE_END, *, sites="gill", **kwargs
) -> xr.Dataset:
    """The sample (or a copy of it at ``root``) opened lazily."""
    return auroradask.open_themis(root or auroradask.sample_archive(), sites, start, end, **kwargs)


def classify_sample(root=None, start=SAMPLE_START, end=SAMPLE_END, *, model=None, **kwargs):
    """Lazy results of the demo model (or ``model``) on the sample, one chunk a minute."""
    kwargs.setdefault("chunk_minutes", 1)
    frames = open_sample(root, start, end, **kwargs)
    return auroradask.classify(frames, model or auroradask.demo_model())


def with_extras(results: xr.Dataset, frames: xr.Dataset) -> xr.Dataset:
    """``results`` with two extra per-slot variables a store keeps beside the labels: each
    frame's zenith column (uint16, like a keogram) and a float16 vector (like an embedding)."""
    zenith = frames["images"].isel(x=128).rename(y="keogram_row")
    vector = xr.concat([results["probability"], 1 - results["probability"]], "class")
    out = results.assign(
        keogram=zenith.assign_attrs(long_name="zenith column"),
        embedding=vector.rename({"class": "feature"}).astype(np.float16).drop_vars("feature"),
    )
    return out.assign_coords(keogram_row=np.arange(zenith.sizes["keogram_row"]))


def minute_bytes(root: Path, hhmm: str) -> bytes:
    """Decompressed bytes of one sample minute file."""
    (path,) = (root / HOUR_DIR).glob(f"20140310_{hhmm}_gill_themis19_full.pgm*")
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def copy_as(tmp_path: Path, site: str = "gill", day: str = "10") -> Path:
    """A copy of the sample tree as another site and/or day, names and headers rewritten."""
    root = tmp_path / f"stream0-{site}-{day}"
    source = Path(auroradask.sample_archive())
    for path in source.rglob("*.pgm*"):
        minute = pd.Timestamp(f"201403{day} {path.name[9:11]}:{path.name[11:13]}")
        relative = str(path.relative_to(source)).replace("gill", site).replace("/10/", f"/{day}/")
        target = root / relative.replace("20140310", f"201403{day}")
        target.parent.mkdir(parents=True, exist_ok=True)
        raw = path.read_bytes()
        data = relabel_minute(gzip.decompress(raw) if path.suffix == ".gz" else raw, site, minute)
        target.write_bytes(gzip.compress(data, compresslevel=1) if path.suffix == ".gz" else data)
    return root


def tiny_model(path, *, size=(224, 224), channels=3, n_out=4, logits=True, layout="NHWC"):
    """Write a small ONNX graph with known outputs; return a function computing them.

    The graph weighs every pixel by a map that differs along rows and columns (so a wrong
    transpose changes the outputs), averages each channel, then applies a fixed linear map
    to ``n_out`` scores (a softmax follows unless ``logits``). The returned function takes
    channels-last model input ``(n, rows, cols, channels)`` and gives the expected outputs.
    """
    from onnx import TensorProto, helper, numpy_helper, save

    rows, cols = size
    spatial = (
        np.linspace(0.0, 2.0, rows, dtype=np.float32)[:, None]
        + np.linspace(0.0, 0.5, cols, dtype=np.float32)[None, :] ** 2
    )
    if layout == "NHWC":
        shape, axes, weight_map = ["batch", rows, cols, channels], [1, 2], spatial[None, :, :, None]
    else:
        shape, axes, weight_map = ["batch", channels, rows, cols], [2, 3], spatial[None, None]
    weights = np.linspace(-0.05, 0.08, channels * n_out, dtype=np.float32).reshape(channels, n_out)
    nodes = [
        helper.make_node("Mul", ["image", "spatial"], ["weighted"]),
        helper.make_node("ReduceMean", ["weighted"], ["mean"], axes=axes, keepdims=0),
        helper.make_node("MatMul", ["mean", "weights"], ["scores" if logits else "logits"]),
    ]
    if not logits:
        nodes.append(helper.make_node("Softmax", ["logits"], ["scores"], axis=1))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", n_out])],
        initializer=[
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(weight_map.astype(np.float32), "spatial"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))

    def expected(model_input: np.ndarray) -> np.ndarray:
        means = (model_input * spatial[None, :, :, None]).mean(axis=(1, 2))
        scores = means @ weights
        if logits:
            return scores
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return expected


def assert_same_store(a: xr.Dataset, b: xr.Dataset) -> None:
    """Two results stores hold the same sites, times, classes and values in every slot."""
    assert a.sizes == b.sizes
    for name in ("site", "time", "class"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    extras = sorted(set(a.data_vars) - set(STORE_VARIABLES))
    assert extras == sorted(set(b.data_vars) - set(STORE_VARIABLES))
    for name in STORE_VARIABLES + extras:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


#: Site names a store from elsewhere may hold: a path out of any folder, an absolute path
#: (filled in by the test: ``{tmp}``), markup that closes a script, a line break.
HOSTILE_SITES = [
    "../escaped",
    "{tmp}/absolute",
    "</script><img src=x onerror=alert(1)>",
    "gill\nfake line",
]


def set_site_names(store: str | os.PathLike, names: list[str]) -> None:
    """Overwrite a store's site names with zarr directly (``to_zarr`` refuses such names):
    what a store altered or made elsewhere can hold."""
    import zarr

    zarr.open_group(str(store), mode="r+")["site"][:] = np.array(names, dtype=object)


def cf_check(netcdf_path) -> dict[str, list[str]]:
    """Check a netCDF file with ``cfchecker`` (CF-1.8 rules, its newest), offline.

    cfchecker reads its tables from URLs; here they are local: the CF standard name table's
    entries that auroradask uses (tests/data, copied from table v93), and minimal area-type
    and region tables (auroradask uses none). Its units library (cfunits) needs UDUNITS-2,
    which the ``cf-units`` wheel carries: it is found there instead of on the system.
    Returns the messages by category (``FATAL``, ``ERROR``, ``WARN``, ...) for the file.
    """
    import ctypes.util

    import cf_units

    package = Path(cf_units.__file__).parent
    (library,) = (package.parent / "cf_units.libs").glob("libudunits2*")
    os.environ.setdefault("UDUNITS2_XML_PATH", str(package / "etc" / "share" / "udunits2.xml"))
    real = ctypes.util.find_library
    ctypes.util.find_library = lambda name: str(library) if name == "udunits2" else real(name)
    try:
        from cfchecker.cfchecks import CFChecker, CFVersion
    finally:
        ctypes.util.find_library = real
    data = Path(__file__).parents[1] / "data"
    checker = CFChecker(
        cfStandardNamesXML=str(data / "cf-standard-name-table-subset.xml"),
        cfAreaTypesXML=str(data / "cf-area-types-minimal.xml"),
        cfRegionNamesXML=str(data / "cf-region-names-minimal.xml"),
        version=CFVersion((1, 8)),
        silent=True,
    )
    checker.checker(str(netcdf_path))
    results = checker.all_results[str(netcdf_path)]
    messages: dict[str, list[str]] = {}
    for scope in ("global", "variables"):
        entries = results[scope] if scope == "global" else results[scope].values()
        for entry in [entries] if scope == "global" else entries:
            for category, texts in entry.items():
                messages.setdefault(category, []).extend(texts)
    return messages


class SimulatedCrash(BaseException):
    """Raised by a store write: everything after it in that run never happens."""


class CrashAt:
    """Count a store's writes (Zarr objects, staged pieces, intents, removals) and raise
    :class:`SimulatedCrash` at the ``crash_at``-th, as if the process died just before it.

    ``zarr_store`` and ``filesystem`` are the classes the store is written through:
    ``zarr.storage.LocalStore`` and fsspec's ``LocalFileSystem`` on a local disk,
    ``zarr.storage.FsspecStore`` and ``s3fs.S3FileSystem`` on S3.
    """

    def __init__(self, monkeypatch, crash_at: int | None, zarr_store=None, filesystem=None):
        import fsspec.implementations.local
        import zarr

        from auroradask.store import _layout, _write

        zarr_store = zarr_store or zarr.storage.LocalStore
        filesystem = filesystem or fsspec.implementations.local.LocalFileSystem
        self.count, self.crash_at = 0, crash_at
        for name in ("set", "delete"):
            monkeypatch.setattr(zarr_store, name, self._wrap_async(getattr(zarr_store, name)))
        for module in (_layout, _write):
            for name in ("write_bytes", "remove"):
                if hasattr(module, name):
                    monkeypatch.setattr(module, name, self._wrap(getattr(_layout, name)))
        monkeypatch.setattr(filesystem, "rm", self._wrap(filesystem.rm))

    def tick(self) -> None:
        self.count += 1
        if self.count == self.crash_at:
            raise SimulatedCrash(self.count)

    def _wrap(self, real):
        def write(*args, **kwargs):
            self.tick()
            return real(*args, **kwargs)

        return write

    def _wrap_async(self, real):
        async def write(*args, **kwargs):
            self.tick()
            return await real(*args, **kwargs)

        return write


def sky_nights(
    nights: int,
    per_class: int,
    *,
    seed: int = 0,
    site: str = "synt",
    first_night: str = "2020-01-01",
    chunk: int = 20,
    bad: tuple[int, ...] = (),
):
    """Frames of the demo model's synthetic sky generator, ``per_class`` frames of each class
    per night, shuffled, from 06:00 UT of ``nights`` consecutive nights.

    Returns the frames dataset (as :func:`auroradask.open_themis` gives them, one site) and
    the per-frame truth table (``site``, ``time``, ``label``: class names). Frames ``bad``
    (indices along time) have frame_status 3 (frame missing).
    """
    import dask.array as da
    import pandas as pd

    from auroradask._schema import SLOT
    from examples.train_demo_model import CLASSES as SKY_CLASSES, sky

    rng = np.random.default_rng(seed)
    images, times, labels = [], [], []
    for night in range(nights):
        kinds = np.repeat(np.arange(len(SKY_CLASSES)), per_class)
        rng.shuffle(kinds)
        start = np.datetime64(first_night, "ns") + np.timedelta64(night, "D")
        start = start + np.timedelta64(6, "h")
        times.append(start + np.arange(len(kinds)) * SLOT)
        images.extend(sky(rng, SKY_CLASSES[k]) for k in kinds)
        labels.extend(SKY_CLASSES[k] for k in kinds)
    stack = np.stack(images)[None]
    time = np.concatenate(times)
    status = np.zeros((1, len(time)), dtype=np.int8)
    status[0, list(bad)] = 3
    frames = xr.Dataset(
        {
            "images": (("site", "time", "y", "x"), da.from_array(stack, chunks=(1, chunk, -1, -1))),
            "frame_status": (("site", "time"), da.from_array(status, chunks=(1, chunk))),
            "timestamp": (("site", "time"), time[None] + np.timedelta64(1, "s")),
        },
        coords={"site": [site], "time": time},
    )  # fmt: skip
    truth = pd.DataFrame({"site": site, "time": time, "label": labels})
    return frames, truth


def tiled_results(sample: xr.Dataset, sites: list[str], start: str, n_slots: int) -> xr.Dataset:
    """Results of the real sample laid over ``n_slots`` 3-s slots from ``start`` at ``sites``,
    in memory, without extra variables: what a long multi-site run writes, built in an instant.

    Slot ``k`` of site ``i`` holds the sample's frame ``(k + 7 i) % n`` (so that each site
    differs); its timestamp keeps that frame's offset from its slot, so that a value put
    into the wrong slot, day or site reads back with a time that gives it away.
    """
    from auroradask._schema import SLOT

    one = sample.drop_vars(["keogram", "keogram_row"], errors="ignore").isel(site=0)
    n = one.sizes["time"]
    times = np.datetime64(start, "ns") + np.arange(n_slots) * SLOT
    frames = (np.arange(n_slots)[None, :] + 7 * np.arange(len(sites))[:, None]) % n
    offsets = (one.timestamp.values - one.time.values)[frames]
    data = {
        name: (("site", *one[name].dims), one[name].values[frames])
        for name in ("label", "confidence", "probability", "frame_status")
    }
    data["timestamp"] = (("site", "time"), times[None, :] + offsets)
    out = xr.Dataset(
        data,
        coords={
            "site": sites,
            "time": times,
            "class": sample["class"].values,
            "imager": ("site", [f"themis{20 + i}" for i in range(len(sites))]),
            "latitude": ("site", np.linspace(50.0, 70.0, len(sites))),
            "longitude": ("site", np.linspace(-120.0, -60.0, len(sites))),
        },
        attrs=dict(sample.attrs),
    )
    out.attrs["elevation_source"] = json.dumps(dict.fromkeys(sites, "circle(horizon_radius=128)"))
    return out


class SlowDirectories:
    """A fault-injecting file system: folder creations under ``root`` are held back, so that
    removals issued after them overtake them.

    Each creation of a folder that is not there yet (``os.mkdir``, which ``os.makedirs`` and
    ``pathlib`` call for each level, and fsspec's local ``makedirs``) waits between half of
    ``hold`` and ``hold`` seconds before it acts; removals (``os.rmdir``, fsspec's local
    ``rmdir`` and ``rm``) wait up to ``remove_delay``. A check-then-create such as
    ``os.makedirs`` (is the parent there? then make the child) is then held open for as
    long as other threads take to finish what they were doing, and a removal of the parent
    that a quiet machine lands in that gap once in many runs lands there whenever the two
    run together. The holds are long and alike (not spread from zero): when several threads
    create one folder at once the first of them would otherwise act almost at once.
    ``seed`` makes the delays repeatable for one order of calls.
    """

    def __init__(
        self,
        monkeypatch,
        root,
        *,
        within: str = "",
        seed: int = 0,
        hold: float = 0.15,
        remove_delay: float = 0.002,
    ) -> None:
        import random
        import threading

        import fsspec.implementations.local

        self.root, self.within = str(root), within
        self.hold, self.remove_delay = hold, remove_delay
        self.rng, self.lock = random.Random(seed), threading.Lock()
        self.held = self.removals = 0
        monkeypatch.setattr(os, "mkdir", self._creation(os.mkdir))
        monkeypatch.setattr(os, "rmdir", self._removal(os.rmdir))
        local = fsspec.implementations.local.LocalFileSystem
        monkeypatch.setattr(local, "makedirs", self._creation(local.makedirs, method=True))
        for name in ("rmdir", "rm"):
            monkeypatch.setattr(local, name, self._removal(getattr(local, name), method=True))

    def _ours(self, path) -> bool:
        path = os.fspath(path)
        return path.startswith(self.root) and self.within in path

    def _wait(self, low: float, high: float) -> None:
        import time

        with self.lock:
            pause = self.rng.uniform(low, high)
        time.sleep(pause)

    def _creation(self, real, method: bool = False):
        def create(*args, **kwargs):
            path = args[1] if method else args[0]
            if self._ours(path) and not os.path.isdir(path):
                with self.lock:
                    self.held += 1
                self._wait(self.hold / 2, self.hold)
            return real(*args, **kwargs)

        return create

    def _removal(self, real, method: bool = False):
        def remove(*args, **kwargs):
            path = args[1] if method else args[0]
            if self._ours(path):
                with self.lock:
                    self.removals += 1
                self._wait(0.0, self.remove_delay)
            return real(*args, **kwargs)

        return remove
