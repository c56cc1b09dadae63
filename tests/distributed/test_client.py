"""Starting or joining a cluster: a scheduler file that is not one is named, not asserted."""

from __future__ import annotations

import os
import time

import psutil
import pytest

import auroradask
from auroradask.cli.main import main


@pytest.mark.parametrize("content", ["{}", "not json", '{"address": ""}', "[1, 2]"])
def test_a_malformed_scheduler_file_is_named(tmp_path, content, capsys):
    path = tmp_path / "scheduler.json"
    path.write_text(content)
    with pytest.raises(auroradask.ArgumentError, match="^scheduler: .*scheduler.json"):
        auroradask.start_client(str(path))
    assert main(["classify", "--scheduler", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scheduler.json" in err[0] and "AssertionError" not in err[0]


def test_workers_below_one_are_refused():
    with pytest.raises(auroradask.ArgumentError, match="^workers"):
        auroradask.start_client(workers=0)


@pytest.mark.parametrize("profile", [False, True])
def test_the_workers_statistical_profiler_is_off_unless_asked_for(profile):
    client = auroradask.start_client(
        workers=1, dashboard_address="127.0.0.1:0", worker_profile=profile
    )
    try:
        # the worker's sampling callback exists only where its profiler is enabled
        running = client.run(lambda dask_worker: "profile" in dask_worker.periodic_callbacks)
        assert list(running.values()) == [profile]
    finally:
        client.close()


def test_closing_the_client_stops_its_local_cluster():
    """start_client's LocalCluster belongs to the client: closing it leaves no worker process
    behind (before, the cluster outlived client.close() until the interpreter exited)."""
    client = auroradask.start_client(workers=2, dashboard_address="127.0.0.1:0")
    pids = list(client.run(os.getpid).values())
    assert len(pids) == 2
    client.close()
    deadline = time.monotonic() + 30
    while any(psutil.pid_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in pids if psutil.pid_exists(pid)]
    assert client.cluster.status.name == "closed"


def test_a_big_model_runs_as_one_worker_with_a_thread_per_core(tmp_path):
    """Threads share one session's weights: chosen for a model file of 32 MB or more."""
    assert auroradask.threads_for_model(auroradask.demo_model(), cores=4) == 1
    assert auroradask.threads_for_model(auroradask.load_model(auroradask.demo_model()), 4) == 1
    big = tmp_path / "big.onnx"
    with open(big, "wb") as f:  # a sparse file: only its size matters here
        f.truncate(32 * 2**20)
    assert auroradask.threads_for_model(big, cores=4) == 4
    assert auroradask.threads_for_model(str(big), cores=2) == 2
    assert auroradask.threads_for_model(tmp_path / "missing.onnx", cores=4) == 1
