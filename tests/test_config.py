"""auroradask's settings in dask's config (``auroradask.*``): the shipped YAML defaults, dask's
ways of setting them (``dask.config.set``, ``DASK_AURORADASK__...`` variables), and each
setting read where it is used: the cache folder, chunk minutes, the lock's staleness,
storage options."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest

import auroradask
from auroradask import _config
from auroradask._schema import DEFAULT_CHUNK_MINUTES
from auroradask.errors import ArgumentError
from auroradask.io._archive import default_cache_dir
from auroradask.store._layout import locate
from tests.support.utils import ENV, classify_sample, open_sample

ROOT = Path(__file__).parents[1]


def test_the_shipped_defaults_are_in_dasks_config():
    assert dask.config.get("auroradask") == {
        "cache": None,
        "chunk-minutes": DEFAULT_CHUNK_MINUTES,
        "lock-stale-after": 300,
        "store-piece-minutes": 120,
        "storage-options": {},
    }
    assert _config.setting("chunk_minutes") == 10  # dask's - and _ alike


def test_a_setting_set_before_the_defaults_are_registered_leaves_them_when_it_exits():
    # dask.config.set removes the namespace it created on exit, defaults registered inside
    code = (
        "import dask\n"
        "with dask.config.set({'auroradask.chunk-minutes': 30}):\n"
        "    from auroradask._config import setting\n"
        "    inside = setting('chunk-minutes')\n"
        "print(inside, setting('chunk_minutes'), setting('storage-options'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["30", "10", "{}"]


def test_a_name_that_is_no_setting_is_an_error_not_none():
    with pytest.raises(KeyError, match="auroradask.chunk-minute "):
        _config.setting("chunk-minute")


def test_import_auroradask_stays_light():
    code = (
        "import sys, auroradask; print(sorted({'dask', 'auroradask._config'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_environment_variables_set_them_as_dask_reads_them(tmp_path):
    code = (
        "import json, auroradask, dask\n"
        "from auroradask.io._archive import default_cache_dir\n"
        "frames = auroradask.open_themis(auroradask.sample_archive(), 'gill',\n"
        "    '2014-03-10T06:00', '2014-03-10T06:06')\n"
        "print(json.dumps([frames.chunksizes['time'], default_cache_dir('https://h/a'),\n"
        "    dask.config.get('auroradask.lock-stale-after'),\n"
        "    dask.config.get('auroradask.storage-options')]))\n"
    )
    env = {
        **ENV,
        "DASK_AURORADASK__CHUNK_MINUTES": "2",
        "DASK_AURORADASK__CACHE": str(tmp_path / "cache"),
        "DASK_AURORADASK__LOCK_STALE_AFTER": "120",
        "DASK_AURORADASK__STORAGE_OPTIONS": '{"s3": {"anon": True}}',
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    chunks, cache, stale, options = json.loads(out.stdout)
    assert chunks == [40, 40, 40]
    assert cache == str(tmp_path / "cache" / "h" / "a")
    assert stale == 120 and options == {"s3": {"anon": True}}


def test_chunk_minutes_setting_and_argument():
    assert open_sample().chunksizes["time"] == (120,)  # 10 minutes: the whole sample
    with dask.config.set({"auroradask.chunk-minutes": 3}):
        assert open_sample().chunksizes["time"] == (60, 60)
        assert open_sample(chunk_minutes=1).chunksizes["time"] == (20,) * 6  # argument wins
        with pytest.raises(ArgumentError, match="chunk_minutes"):
            open_sample(chunk_minutes=0)  # 0 is checked, not taken for "unset"
    with dask.config.set({"auroradask.chunk-minutes": 7}):
        with pytest.raises(ArgumentError, match="does not divide a day"):
            open_sample()
        cdf = ROOT / "tests" / "data" / "thg_l1_asf_gako_2011010617_v01.cdf"
        with pytest.raises(ArgumentError, match="does not divide a day"):
            auroradask.open_themis_cdf(cdf, "gako", "2011-01-06T17:00", "2011-01-06T17:02")


def test_cache_setting_comes_before_the_older_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("AURORADASK_CACHE", str(tmp_path / "env"))
    assert default_cache_dir("s3://bucket/x").startswith(str(tmp_path / "env"))  # still works
    with dask.config.set({"auroradask.cache": str(tmp_path / "setting")}):
        assert default_cache_dir("s3://bucket/x") == str(tmp_path / "setting" / "bucket" / "x")
    with dask.config.set({"auroradask.cache": "~/elsewhere"}):
        assert default_cache_dir("s3://b").startswith(os.path.expanduser("~/elsewhere"))


def test_storage_options_per_protocol_under_the_calls_own(tmp_path):
    setting = {"auroradask.storage-options": {"file": {"auto_mkdir": True}}}
    with dask.config.set(setting):
        archive = auroradask.open_archive(auroradask.sample_archive())
        assert archive.fs.auto_mkdir is True
        assert locate(tmp_path / "s.zarr", None, None).storage_options == {"auto_mkdir": True}
        own = locate(tmp_path / "s.zarr", None, {"auto_mkdir": False})
        assert own.storage_options == {"auto_mkdir": False}  # the call's own wins
    assert auroradask.open_archive(auroradask.sample_archive()).fs.auto_mkdir is False
    with dask.config.set({"auroradask.storage-options": {"s3": {"anon": True, "key": "k"}}}):
        assert _config.storage_options_for("s3://b/x", {"key": "mine"}) == {
            "anon": True,
            "key": "mine",
        }
        assert _config.storage_options_for("https://h/x", None) == {}
    with dask.config.set({"auroradask.storage-options": ["anon"]}):
        with pytest.raises(ArgumentError, match="auroradask.storage-options"):
            auroradask.open_archive(auroradask.sample_archive())


def _foreign_lock(store: Path, age: float) -> None:
    """A lock held by a writer on another host whose heartbeat stopped ``age`` seconds ago."""
    holder = {"host": "elsewhere", "pid": 1, "token": "theirs", "heartbeat": time.time() - age}
    Path(f"{store}.lock").write_text(json.dumps(holder))


def test_lock_staleness_setting(tmp_path):
    results = classify_sample(end="2014-03-10T06:01")
    store = tmp_path / "s.zarr"
    _foreign_lock(store, age=100)
    with pytest.raises(auroradask.StoreLockedError):  # 100 s < 300 s: still held
        auroradask.to_zarr(results, store, progress=False)
    with dask.config.set({"auroradask.lock-stale-after": 60}):
        summary = auroradask.to_zarr(results, store, progress=False)  # stale: taken over
    assert summary.written == 20
    with dask.config.set({"auroradask.lock-stale-after": 10}):
        with pytest.raises(ArgumentError, match="^stale_after"):  # checked as the argument is
            auroradask.to_zarr(results, store, progress=False)
        old = tmp_path / "old.zarr"
        shutil.copytree(ROOT / "tests" / "data" / "first-release-store.zarr", old)
        with pytest.raises(ArgumentError, match="^stale_after"):
            auroradask.upgrade_store(old)
