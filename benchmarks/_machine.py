"""What a benchmark figure was measured on, and how a repeated figure is summarised.

A figure without its machine is not a figure: throughput measured elsewhere was 4.4-4.9x the
baseline where benchmarks/README.md said 6.07x (issue 32), and the README could not say which
CPU, BLAS or threading layer either figure came from. Every benchmark that prints figures
prints :func:`describe_machine` with them and stores it in its JSON.

Figures on a shared machine move between runs; a ratio measured in one round (each
configuration run once, A B C, then again, A B C, ...) cancels most of a slow spell, because
both sides of it ran within minutes of each other. :func:`summarise` gives the median of the
rounds and their spread (lowest-highest).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import platform
import statistics
import threading
import time
from collections.abc import Iterable
from typing import Any

#: the libraries whose versions and threads set the figures
LIBRARIES = ("numpy", "dask", "distributed", "onnxruntime", "cv2", "numba", "isal", "zarr")
#: environment variables that change how many threads the kernels use
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
)


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _blas() -> list[dict[str, Any]]:
    """The BLAS and OpenMP libraries loaded, with their thread counts (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed"}]
    keep = ("internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{k: lib[k] for k in keep if k in lib} for lib in threadpool_info()]


def _numba() -> dict[str, Any]:
    try:
        import numba
    except ImportError:
        return {}
    return {
        "threading_layer_setting": numba.config.THREADING_LAYER,
        "num_threads": numba.config.NUMBA_NUM_THREADS,
    }


def _hash_rate(buffer: bytes, seconds: float) -> float:
    """MB/s of SHA-256 over ``buffer`` for about ``seconds`` (hashlib lets go of the GIL)."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        hashlib.sha256(buffer).digest()
        done += len(buffer)
    return done / (time.perf_counter() - start) / 1e6


def cores_check(seconds: float = 0.5) -> dict[str, float]:
    """Whether two CPUs are two cores' worth: one thread's hash rate alone, then each of two.

    A 2-vCPU virtual machine may be two hyperthreads of one physical core, or share its cores
    with other guests; the guest cannot see either (``lscpu`` says one thread per core), but
    both make two workers run slower than twice one. ``efficiency`` is the two threads' rate
    over twice the one's: near 1 for two free cores (0.92-0.98 on the quiet AMD EPYC of
    benchmarks/README.md), lower where the two share a core or the machine is loaded (0.62
    there with five test runs beside it; hyperthreads of one core were not available to
    measure). Taken before every benchmark, it tells whether two runs' 2-core figures can be
    compared at all.
    """
    buffer = os.urandom(1 << 20)
    one = _hash_rate(buffer, seconds)
    rates: list[float] = []
    threads = [
        threading.Thread(target=lambda: rates.append(_hash_rate(buffer, seconds))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "one_thread_mb_s": round(one, 1),
        "two_threads_mb_s_each": round(sum(rates) / 2, 1),
        "efficiency": round(sum(rates) / (2 * one), 2),
    }


def describe_machine() -> dict[str, Any]:
    """The CPU, its clock, the threads the kernels may use and the library versions.

    The clock is what ``/proc/cpuinfo`` says at the moment (a virtual machine often reports
    its nominal clock only); the governor and turbo setting are recorded where the kernel
    exposes them (bare metal), because turbo moved single-thread ceilings by 10-25 %.
    """
    cpu = _cpuinfo()
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = getattr(importlib.import_module(name), "__version__", "?")
        except ImportError:
            versions[name] = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": cpu.get("model name") or platform.processor() or platform.machine(),
        "cpu_mhz": cpu.get("cpu MHz"),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "no_turbo": _read("/sys/devices/system/cpu/intel_pstate/no_turbo"),
        "logical_cpus": os.cpu_count(),
        "cpus_usable": affinity,
        "load_average": load,
        "smt_siblings_of_cpu0": _read("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list"),
        "cores_check": cores_check(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "blas_openmp": _blas(),
        "numba": _numba(),
        "thread_variables": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
    }


def format_machine(machine: dict[str, Any]) -> str:
    """:func:`describe_machine` as the lines a benchmark prints above its figures."""
    blas = "; ".join(
        f"{b.get('internal_api', '?')} {b.get('version', '')} "
        f"({b.get('num_threads', '?')} threads, {b.get('threading_layer', '-')})"
        if "internal_api" in b
        else b.get("note", "")
        for b in machine["blas_openmp"]
    )
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    numba = machine["numba"]
    cores = machine["cores_check"]
    lines = [
        f"machine: {machine['cpu']}, {machine['cpus_usable']} of {machine['logical_cpus']} "
        f"logical CPUs usable, {machine['cpu_mhz'] or '?'} MHz reported, governor "
        f"{machine['governor'] or 'not exposed'}, turbo off: {machine['no_turbo'] or 'not exposed'}",
        f"load average at start: {machine['load_average']} (a quiet machine is near 0)",
        f"two threads' hash rate, each, over one's alone: {cores['efficiency']} "
        f"({cores['two_threads_mb_s_each']} and {cores['one_thread_mb_s']} MB/s; near 1: two free "
        "cores, lower: a shared core or a loaded machine); CPU 0's SMT siblings: "
        f"{machine.get('smt_siblings_of_cpu0') or 'not exposed'}",
        f"threads: BLAS/OpenMP {blas or 'none loaded'}; numba: nogil kernels run on dask's "
        f"threads (none is parallel=True, so its layer, {numba.get('threading_layer_setting', '-')}"
        f", and its {numba.get('num_threads', '-')} threads are unused); "
        f"env {machine['thread_variables'] or 'none set'}",
        f"python {machine['python']} on {machine['platform']}; {versions}",
    ]
    return "\n".join(lines)


def summarise(values: Iterable[float]) -> dict[str, float]:
    """The median of repeated figures and their spread (``low``-``high``)."""
    values = sorted(float(v) for v in values)
    return {
        "median": statistics.median(values),
        "low": values[0],
        "high": values[-1],
        "runs": len(values),
    }
