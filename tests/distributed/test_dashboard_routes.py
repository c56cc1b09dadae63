"""auroradask's page through distributed's convention: a route module, under the prefix.

A scheduler serves the route modules of ``distributed.scheduler.http.routes`` under its
``--dashboard-prefix``; auroradask's installation (``etc/dask/auroradask-dashboard.yaml``)
preloads a module that appends its route module there, so a plain ``dask scheduler`` has the
page; :func:`auroradask.dashboard_page` adds it from a plugin where a scheduler lacks it.
The browser tests drive Debian's Chromium as ``test_dashboard.py`` does (marker ``browser``).
"""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

import dask
import pytest
import yaml
from distributed import Client, LocalCluster

import auroradask
from auroradask.distributed._dashboard import (
    ROUTES_KEY,
    ROUTES_MODULE,
    PageHandler,
    RunPublisher,
    page_link,
    served_path,
)
from tests.support.browser import launch, sync_playwright_or_skip
from tests.support.utils import open_sample

ROOT = Path(__file__).parents[2]
SHIPPED = ROOT / "etc" / "dask" / "auroradask-dashboard.yaml"
PRELOAD = "auroradask.distributed.preload"
PLUGIN = "auroradask-dashboard"


def fetch(url: str) -> tuple[int, str, str]:
    """(status, final URL, body) of a GET; an HTTP error's status instead of raising."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.url, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, url, ""


def _routes_without_ours() -> list[str]:
    return [r for r in dask.config.get(ROUTES_KEY) if r != ROUTES_MODULE]


@contextlib.contextmanager
def prefixed_cluster(config: dict, *, workers: int = 0):
    """A LocalCluster (in this process) whose dashboard is under ``/foo``, and its client."""
    with dask.config.set(config):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=False,
            protocol="tcp",
            host="127.0.0.1",
            scheduler_port=0,
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"http_prefix": "/foo"},
        )
    try:
        with Client(cluster) as client:
            yield cluster, client
    finally:
        cluster.close()


def read_at_start(dask_scheduler) -> bool:
    """The scheduler read the route module with its own routes at start (its wildcard
    router), rather than having the routes added later (``serve_page``)."""
    rules = dask_scheduler.http_application.wildcard_router.rules
    return any(rule.target is PageHandler for rule in rules)


def _root(client) -> str:
    """``http://host:port`` of the client's dashboard."""
    return client.dashboard_link.removesuffix("/status")


def _check_prefixed_page(cluster, client) -> None:
    root = _root(client)
    url = auroradask.dashboard_page(client)
    assert url == root + "/foo/auroradask"
    status, _, html = fetch(url)
    assert status == 200 and "<title>auroradask</title>" in html
    status, _, body = fetch(url + "/state.json")
    assert status == 200 and json.loads(body)["run"] is None
    status, final, _ = fetch(url + "/")  # redirected to the page, the prefix kept
    assert (status, final) == (200, url)
    assert fetch(root + "/auroradask")[0] == 404  # nothing outside the prefix
    # distributed's own routes are all still there, under the same prefix
    assert fetch(root + "/foo/health")[:3:2] == (200, "ok")
    assert fetch(root + "/foo/status")[0] == 200


def test_page_link_adds_the_prefix_the_link_lacks():
    assert page_link("http://h:8787/status") == "http://h:8787/auroradask"
    assert page_link("http://h:8787/status", "/foo/auroradask") == "http://h:8787/foo/auroradask"
    # a link template that already has the prefix, and a proxy's URL
    assert (
        page_link("http://h:8787/foo/status", "/foo/auroradask") == "http://h:8787/foo/auroradask"
    )
    proxy = "https://hub/user/me/proxy/8787/status"
    assert page_link(proxy, "/auroradask") == "https://hub/user/me/proxy/8787/auroradask"


def test_route_module_serves_the_page_under_the_prefix():
    # what the installed YAML does: the preload appends the route module before the
    # scheduler reads the routes; no plugin is needed
    with prefixed_cluster({"distributed.scheduler.preload": [PRELOAD]}) as (cluster, client):
        assert ROUTES_MODULE in dask.config.get(ROUTES_KEY)
        assert client.run_on_scheduler(served_path) == "/foo/auroradask"
        assert read_at_start(cluster.scheduler)
        _check_prefixed_page(cluster, client)
        assert PLUGIN not in cluster.scheduler.plugins


def test_without_the_config_the_plugin_serves_it_under_the_prefix():
    config = {"distributed.scheduler.preload": [], ROUTES_KEY: _routes_without_ours()}
    with prefixed_cluster(config) as (cluster, client):
        assert client.run_on_scheduler(served_path) is None
        _check_prefixed_page(cluster, client)
        assert PLUGIN in cluster.scheduler.plugins
        assert not read_at_start(cluster.scheduler)


def test_preload_serves_it_where_the_config_lost_the_routes():
    # a process imports a preload once; a later scheduler whose config no longer lists the
    # route module (dask.config.refresh) gets the routes from the preload's dask_setup
    importlib.import_module(PRELOAD)
    config = {"distributed.scheduler.preload": [PRELOAD], ROUTES_KEY: _routes_without_ours()}
    with prefixed_cluster(config) as (cluster, client):
        assert client.run_on_scheduler(served_path) == "/foo/auroradask"
        assert not read_at_start(cluster.scheduler)  # added by dask_setup
        _check_prefixed_page(cluster, client)
        assert PLUGIN not in cluster.scheduler.plugins


def test_shipped_config_preloads_and_replaces_no_list_of_distributeds():
    config = yaml.safe_load(SHIPPED.read_text())
    assert config == {"distributed": {"scheduler": {"preload": [PRELOAD]}}}
    # appended, not replaced: distributed's default route modules stay
    code = (
        "import dask, distributed, auroradask.distributed.preload; "
        f"print(dask.config.get({ROUTES_KEY!r}))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    routes = ast.literal_eval(out.stdout)  # a printed list of str
    assert routes[-1] == ROUTES_MODULE and "distributed.http.health" in routes
    assert routes.count(ROUTES_MODULE) == 1


def _installed_dist() -> importlib.metadata.Distribution | None:
    """auroradask's distribution in this environment's site-packages (not a checkout's
    ``auroradask.egg-info``, which the import path may find first)."""
    site = sysconfig.get_paths()["purelib"]
    for dist in importlib.metadata.distributions(path=[site]):
        if dist.metadata["Name"] == "auroradask":
            return dist
    return None


def _installed_normally() -> bool:
    """auroradask is installed here from a wheel (not editable, not a checkout only)."""
    dist = _installed_dist()
    if dist is None:
        return False
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    return not direct.get("dir_info", {}).get("editable", False)


def test_installation_puts_the_config_where_dask_reads_it():
    if not _installed_normally():
        pytest.skip(
            "auroradask is not installed from a wheel here (an editable install or a checkout: "
            "setuptools' editable wheels leave data files out)"
        )
    installed = Path(sys.prefix, "etc", "dask", SHIPPED.name)
    assert installed.read_text() == SHIPPED.read_text()
    assert str(Path(sys.prefix, "etc", "dask")) in dask.config.paths
    # the file is one of the distribution's, so pip uninstall removes it
    assert SHIPPED.name in {Path(f).name for f in _installed_dist().files}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def plain_dask_scheduler(tmp_path, prefix: str = "/bar"):
    """``dask scheduler`` in a subprocess, as a user starts one: no auroradask client.

    Where auroradask is installed from a wheel, its ``etc/dask`` file is what configures the
    page; from a checkout or an editable install (no file: see above), ``DASK_CONFIG`` points
    dask at the shipped file instead, the same YAML.
    """
    port = _free_port()
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if not _installed_normally():
        env["DASK_CONFIG"] = str(SHIPPED.parent)
    command = [
        sys.executable,
        "-m",
        "distributed.cli.dask_scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--dashboard-address",
        f"127.0.0.1:{port}",
        "--dashboard-prefix",
        prefix,
        "--scheduler-file",
        str(scheduler_file),
    ]
    log = open(tmp_path / "scheduler.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}{prefix}/auroradask"
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError):
                if fetch(url)[0] == 200 and scheduler_file.exists():
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"no page at {url}:\n{(tmp_path / 'scheduler.log').read_text()}")
            time.sleep(0.5)
        yield url, str(scheduler_file)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_a_plain_dask_scheduler_serves_the_page(tmp_path):
    with plain_dask_scheduler(tmp_path) as (url, scheduler_file):
        status, _, body = fetch(url + "/state.json")
        assert status == 200 and json.loads(body)["run"] is None
        # a plain distributed client: the page is found where it is, no plugin registered
        with Client(scheduler_file=scheduler_file) as client:
            assert auroradask.dashboard_page(client) == url
            plugins = client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.plugins))
            assert PLUGIN not in plugins
            assert client.run_on_scheduler(read_at_start)  # the YAML's preload did it


def _open_page(browser, url: str, problems: list[str]):
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    response = page.goto(url)
    assert response.status == 200
    return page


@pytest.mark.browser
def test_in_a_browser_the_page_works_under_a_prefix(tmp_path):
    # a run written through a LocalCluster whose dashboard is under /foo: the page's relative
    # fetch of its state and its link to Dask's dashboard both stay under the prefix
    sync_playwright = sync_playwright_or_skip()
    config = {"distributed.scheduler.preload": [PRELOAD]}
    with prefixed_cluster(config, workers=1) as (cluster, client):
        url = auroradask.dashboard_page(client)
        assert url == _root(client) + "/foo/auroradask"
        results = auroradask.classify(open_sample(chunk_minutes=2), auroradask.demo_model())
        auroradask.to_zarr(results, tmp_path / "sample.zarr", progress=False)
        with sync_playwright() as p:
            browser = launch(p)
            try:
                problems: list[str] = []
                page = _open_page(browser, url, problems)
                page.wait_for_function(
                    "document.getElementById('done').textContent === '120 / 120'",
                    timeout=30_000,
                )
                assert page.text_content("#status") == "finished"
                assert page.text_content("#store").endswith("sample.zarr")
                link = page.eval_on_selector("header a", "a => a.href")
                assert link == url.removesuffix("/auroradask") + "/status"
                assert page.goto(link).status == 200  # Dask's own page, under the prefix
                assert problems == []
            finally:
                browser.close()


@pytest.mark.browser
def test_in_a_browser_a_plain_dask_scheduler_shows_a_run(tmp_path):
    # dask scheduler started without auroradask's client, under --dashboard-prefix /bar; a
    # plain client publishes a run's state, as to_zarr does through any client
    sync_playwright = sync_playwright_or_skip()
    with plain_dask_scheduler(tmp_path) as (url, scheduler_file):
        with sync_playwright() as p:
            browser = launch(p)
            try:
                problems: list[str] = []
                page = _open_page(browser, url, problems)
                page.wait_for_selector("#empty:not([hidden])", timeout=30_000)
                with Client(scheduler_file=scheduler_file) as client:
                    RunPublisher(client, "s3://bucket/night.zarr").finish("finished")
                    page.wait_for_selector("#run:not([hidden])", timeout=30_000)
                    page.wait_for_function(
                        "document.getElementById('status').textContent === 'finished'",
                        timeout=30_000,
                    )
                assert page.text_content("#store") == "s3://bucket/night.zarr"
                link = page.eval_on_selector("header a", "a => a.href")
                assert link == url.removesuffix("/auroradask") + "/status"
                assert problems == []
            finally:
                browser.close()
