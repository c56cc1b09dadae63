"""Workers that share no disk with the client: the model reaches them by itself (by URL, or
its bytes shipped once per worker), and each worker is probed for the archive and the store
before any data is read.

The workers here are ``dask worker`` processes started in their own temporary folder, each
in a private mount namespace where the client's folder is an empty tmpfs (``unshare
--mount``, root only): they truly cannot see the client's model, archive or store, as on a
cluster without a shared home. Where that is not possible those tests are skipped, unless
``AURORADASK_REQUIRE_SLURM=1`` (CI, as root, where the SLURM tests run too).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import fsspec
import numpy as np
import pytest
from distributed import Client

import auroradask
from auroradask.io._remote import cache_path
from tests.support.archive import make_archive
from tests.support.servers import http_server
from tests.support.utils import SKYMAP, assert_same_store, tiny_model

SITES = ["gill", "fsmi"]
START, END = "2014-03-10T06:00", "2014-03-10T06:05"
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(
        [str(Path(auroradask.__file__).parent.parent), os.environ.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep),
}


def _cannot_hide(folder: Path) -> str | None:
    """Why a process cannot be given a view without ``folder`` here, or None."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "hiding a folder from the workers needs root and unshare (util-linux)"
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "x", folder],
        capture_output=True,
        text=True,
    )
    return None if done.returncode == 0 else f"unshare --mount failed: {done.stderr.strip()}"


def _shipped(sha256: str) -> str | None:
    """Run on a worker: where the model of this sha256 was shipped to it (None: it was not),
    from the worker's own module, imported there."""
    from auroradask.io._remote import SHIPPED as _SHIPPED

    return _SHIPPED.get(sha256)


# the workers cannot import this test module: its functions travel by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Two sites, 5 minutes each (200 frames), served over HTTP by the tests below."""
    root = tmp_path_factory.mktemp("www") / "stream0"
    make_archive(root, SITES, START, hours=1, minutes_per_hour=5)
    return root


@pytest.fixture(scope="module")
def local_store(archive, tmp_path_factory) -> Path:
    """The same request classified from the local tree, without a cluster."""
    out = tmp_path_factory.mktemp("local") / "local.zarr"
    frames = auroradask.open_themis(archive, SITES, START, END, chunk_minutes=1)
    auroradask.to_zarr(auroradask.classify(frames, auroradask.demo_model()), out, progress=False)
    return out


@pytest.fixture(scope="module")
def http_archive(archive):
    with http_server(archive.parent) as url:
        yield f"{url}/stream0"


@pytest.fixture(scope="module")
def remote_cluster(tmp_path_factory):
    """A scheduler and two workers that cannot see the client's folder; yields
    (scheduler file, the client's folder)."""
    base = tmp_path_factory.mktemp("nodisk")
    hidden = base / "client"
    hidden.mkdir()
    reason = _cannot_hide(hidden)
    if reason:
        if os.environ.get("AURORADASK_REQUIRE_SLURM") == "1":
            pytest.fail(f"AURORADASK_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    scheduler_file = base / "scheduler.json"
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            env=ENV,
            cwd=base,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for i in range(2):
            own = base / f"worker{i}"  # its cwd, home and cache: nothing of the client's
            own.mkdir()
            worker = (
                f"mount -t tmpfs tmpfs {hidden} && exec {sys.executable} -m "
                f"distributed.cli.dask_worker --scheduler-file {scheduler_file} --nthreads 1 "
                f"--no-dashboard --host 127.0.0.1 --name nodisk-{i}"
            )
            env = {**ENV, "HOME": str(own), "AURORADASK_CACHE": str(own / "cache")}
            processes.append(
                subprocess.Popen(
                    ["unshare", "--mount", "--propagation", "private", "sh", "-c", worker],
                    env=env,
                    cwd=own,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        with Client(scheduler_file=str(scheduler_file)) as client:
            client.wait_for_workers(2, timeout=120)
        yield scheduler_file, hidden
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def client_cache(remote_cluster, monkeypatch):
    """The client's cache inside its folder, which the workers do not see."""
    _, hidden = remote_cluster
    monkeypatch.setenv("AURORADASK_CACHE", str(hidden / "cache"))
    return hidden / "cache"


def test_a_model_by_url_and_a_store_on_s3_give_the_local_labels(
    remote_cluster, client_cache, http_archive, local_store, s3_bucket
):
    scheduler_file, hidden = remote_cluster
    bucket, options = s3_bucket
    fs = fsspec.filesystem("s3", **options)
    fs.put_file(auroradask.demo_model(), f"{bucket}/models/demo.onnx")
    model = auroradask.load_model(f"{bucket}/models/demo.onnx", storage_options=options)
    assert model.source == f"{bucket}/models/demo.onnx"
    assert Path(model.path).is_relative_to(client_cache)  # the client's own copy
    frames = auroradask.open_themis(http_archive, SITES, START, END, chunk_minutes=1)
    store = f"{bucket}/results.zarr"
    with Client(scheduler_file=str(scheduler_file)) as client:
        assert not any(client.run(os.path.exists, str(hidden / "cache")).values())
        auroradask.to_zarr(
            auroradask.classify(frames, model), store, storage_options=options, progress=False
        )
        # each worker fetched the model from its URL into its own cache; none was shipped
        fetched = client.run(lambda: os.path.exists(cache_path(model.source)))
        shipped = client.run(_shipped, model.sha256)
    assert all(fetched.values()) and not any(shipped.values())
    stored = auroradask.open_results(store, storage_options=options)
    assert_same_store(stored, auroradask.open_results(local_store))


def test_a_local_model_is_shipped_to_workers_that_do_not_see_it(
    remote_cluster, client_cache, http_archive, local_store, s3_bucket
):
    scheduler_file, hidden = remote_cluster
    bucket, options = s3_bucket
    path = hidden / "models" / "mine.onnx"
    path.parent.mkdir(exist_ok=True)
    shutil.copy(auroradask.demo_model(), path)
    model = auroradask.load_model(path)
    frames = auroradask.open_themis(http_archive, SITES, START, END, chunk_minutes=1)
    store = f"{bucket}/shipped.zarr"
    with Client(scheduler_file=str(scheduler_file)) as client:
        assert not any(client.run(os.path.exists, str(path)).values())
        auroradask.to_zarr(
            auroradask.classify(frames, model), store, storage_options=options, progress=False
        )
        shipped = client.run(_shipped, model.sha256)
    for copy in shipped.values():  # each worker's copy, in its own folder
        assert copy is not None and not Path(copy).is_relative_to(hidden)
    stored = auroradask.open_results(store, storage_options=options)
    assert_same_store(stored, auroradask.open_results(local_store))


def test_workers_that_cannot_see_the_archive_stop_the_run_before_any_read(
    remote_cluster, client_cache, archive, s3_bucket
):
    scheduler_file, hidden = remote_cluster
    bucket, options = s3_bucket
    mine = hidden / "stream0"  # a local archive: only the client sees it
    shutil.copytree(archive, mine, dirs_exist_ok=True)
    frames = auroradask.open_themis(mine, SITES, START, END, chunk_minutes=1)
    store = f"{bucket}/blind.zarr"
    with Client(scheduler_file=str(scheduler_file)) as client:
        with pytest.raises(auroradask.ClusterError) as error:
            auroradask.to_zarr(
                auroradask.classify(frames, auroradask.demo_model()),
                store,
                storage_options=options,
                progress=False,
            )
        ran = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_groups))
    message = str(error.value)
    assert message.startswith("archive: workers cannot use it: tcp://127.0.0.1:")
    assert message.count("cannot see") == 2 and str(mine) in message
    assert not [group for group in ran if str(group).startswith("read-themis")]
    # the store was made (on the client) but nothing was written into it
    stored = auroradask.open_results(store, storage_options=options)
    assert int((stored.frame_status >= 0).sum()) == 0


def test_workers_that_cannot_write_the_store_are_named(
    remote_cluster, client_cache, http_archive, tmp_path
):
    scheduler_file, hidden = remote_cluster
    frames = auroradask.open_themis(http_archive, SITES, START, END, chunk_minutes=1)
    with Client(scheduler_file=str(scheduler_file)):
        with pytest.raises(auroradask.StoreError, match="store: workers cannot use it: tcp://"):
            auroradask.to_zarr(
                auroradask.classify(frames, auroradask.demo_model()),
                hidden / "results.zarr",  # local to the client only
                progress=False,
            )


# ----------------------------------------------------------- URLs read on the client alone


def test_a_model_url_brings_its_card_from_beside_it(tmp_path, monkeypatch):
    monkeypatch.setenv("AURORADASK_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "www"
    served.mkdir()
    tiny_model(served / "tiny.onnx")
    card = {"classes": ["a", "b", "c", "d"], "preset": "themis-pa", "outputs": "logits"}
    (served / "tiny.json").write_text(json.dumps(card))
    with http_server(served) as url:
        model = auroradask.load_model(f"{url}/tiny.onnx")
        assert model.classes == ["a", "b", "c", "d"] and model.source == f"{url}/tiny.onnx"
        assert Path(model.path).read_bytes() == (served / "tiny.onnx").read_bytes()
        with pytest.raises(auroradask.SourceNotFoundError, match="missing.onnx"):
            auroradask.load_model(f"{url}/missing.onnx")


def test_a_worker_refuses_a_model_that_changed_at_its_url(tmp_path, monkeypatch):
    from auroradask.io._remote import model_file

    monkeypatch.setenv("AURORADASK_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "www"
    served.mkdir()
    shutil.copy(auroradask.demo_model(), served / "m.onnx")
    with http_server(served) as url:
        model = auroradask.load_model(f"{url}/m.onnx")
        os.remove(model.path)  # as on a worker: no copy of its own yet
        tiny_model(served / "m.onnx")  # another model under the same URL
        with pytest.raises(auroradask.ModelError, match="changed since it was loaded"):
            model_file(model)


def test_an_elevation_map_by_url_is_read_on_the_client(tmp_path, monkeypatch):
    monkeypatch.setenv("AURORADASK_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "www"
    served.mkdir()
    shutil.copy(SKYMAP, served / Path(SKYMAP).name)
    np.save(served / "elevation.npy", auroradask.circle_elevation(100.0))
    frames = auroradask.open_themis(
        auroradask.sample_archive(), "gill", "2014-03-10T06:00", "2014-03-10T06:01"
    )
    with http_server(served) as url:
        for name, local in ((Path(SKYMAP).name, SKYMAP), ("elevation.npy", None)):
            by_url = auroradask.preprocess(frames, elevation=f"{url}/{name}")
            expected = auroradask.preprocess(
                frames, elevation=local or auroradask.circle_elevation(100.0)
            )
            np.testing.assert_array_equal(by_url.values, expected.values)
