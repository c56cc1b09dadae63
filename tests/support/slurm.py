"""A one-node SLURM cluster on this machine, for the batch-cluster tests.

Installs nothing: the Debian packages ``slurmctld``, ``slurmd`` and ``munge`` must be there
(``.ci/run`` installs them). As root, :class:`LocalSlurm` writes a munge key and a
``slurm.conf`` into a temporary folder, starts ``munged``, ``slurmctld`` and ``slurmd`` in the
foreground as child processes (so their PIDs are known: nothing is found by name, nothing
outside the folder is touched), waits for ``sinfo`` to show the node idle, and stops the three
by PID. The daemons listen on free ports of 127.0.0.1, so that a SLURM already on the machine
and this one never meet; the client commands (``sbatch``, ``squeue``, ``scancel``) find this
cluster through ``SLURM_CONF``, which :meth:`LocalSlurm.environ` gives.

The node has this machine's CPUs and memory (``slurmd -C``), one partition ``debug``.
``SelectType=select/cons_tres`` with ``CR_Core_Memory`` lets two one-core jobs share the node;
``ProctrackType=proctrack/linuxproc`` and ``TaskPlugin=task/none`` need no cgroups (none are
delegated inside a container).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
#: client commands the tests and dask-jobqueue call
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol")
#: where Debian puts the daemons (not on a normal user's PATH)
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def which(name: str) -> str | None:
    """The path of a SLURM or munge program, looking in the sbin folders too."""
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN)
    return shutil.which(name, path=path)


def missing_programs() -> list[str]:
    """The daemons and client commands this machine lacks (empty: SLURM can run)."""
    return [name for name in (*DAEMONS, *CLIENTS, "mungekey") if which(name) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_hardware() -> dict[str, int]:
    """CPUs and RealMemory (MB) as slurmd sees them, so that it accepts the config."""
    out = subprocess.run(
        [which("slurmd"), "-C"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    found = {k: int(v) for k, v in re.findall(r"\b(CPUs|RealMemory)=(\d+)", out)}
    if set(found) != {"CPUs", "RealMemory"}:
        raise RuntimeError(f"slurmd -C gave no CPUs or RealMemory: {out!r}")
    return found


class LocalSlurm:
    """A one-node SLURM cluster whose every file lives in ``folder``.

    Use as a context manager: started on entry (up and idle), stopped on exit.
    """

    partition = "debug"

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.node = socket.gethostname().split(".")[0]
        self.processes: dict[str, subprocess.Popen] = {}
        self.conf = self.folder / "slurm.conf"
        self.socket = self.folder / "munge" / "munge.socket"
        self.hardware: dict[str, int] = {}

    # ------------------------------------------------------------------ set up and start

    def environ(self) -> dict[str, str]:
        """What a client command needs to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        self.hardware = node_hardware()
        munge = self.socket.parent
        for sub in ("munge", "state", "spool", "log", "run"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        munge.chmod(0o700)
        key = munge / "munge.key"
        subprocess.run(
            [which("mungekey"), "--create", f"--keyfile={key}", "--force"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        key.chmod(0o600)
        f = self.folder
        self.conf.write_text(
            f"""\
ClusterName=auroradask-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.socket}
CredType=cred/munge
StateSaveLocation={f}/state
SlurmdSpoolDir={f}/spool
SlurmctldPidFile={f}/run/slurmctld.pid
SlurmdPidFile={f}/run/slurmd.pid
SlurmctldLogFile={f}/log/slurmctld.log
SlurmdLogFile={f}/log/slurmd.log
PlugStackConfig={f}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
MinJobAge=30
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.hardware["CPUs"]} RealMemory={self.hardware["RealMemory"]} State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
        )
        (f / "plugstack.conf").write_text("")  # none of /etc/slurm's SPANK plugins

    def _start(self, name: str, args: list[str]) -> None:
        log = open(self.folder / "log" / f"{name}.out", "wb")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, **self.environ()}
        self.processes[name] = subprocess.Popen(
            [which(name), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C of pytest reaches them through stop() only
        )
        log.close()

    def start(self, timeout: float = 60.0) -> None:
        """Write the config, start the three daemons, wait until the node is idle."""
        self.write_config()
        munge = self.socket.parent
        self._start(
            "munged",
            [
                "--foreground",
                "--force",
                f"--socket={self.socket}",
                f"--key-file={munge / 'munge.key'}",
                f"--log-file={self.folder / 'log' / 'munged.log'}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
        )
        self._wait(lambda: self.socket.exists(), 15, "munged's socket")
        self._start("slurmctld", ["-D", "-i", "-f", str(self.conf)])
        self._start("slurmd", ["-D", "-N", self.node, "-f", str(self.conf)])
        self._wait(self._node_idle, timeout, f"node {self.node} idle in sinfo")

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(
                    f"{', '.join(dead)} exited while waiting for {what}:\n{self.logs()}"
                )
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"no {what} after {timeout:.0f} s:\n{self.logs()}")

    def _node_idle(self) -> bool:
        state = self.run("sinfo", "--noheader", "--nodes", self.node, "--format=%T", check=False)
        return state.strip().rstrip("*") == "idle"

    # ------------------------------------------------------------------ use

    def run(self, command: str, *args: str, check: bool = True) -> str:
        """A SLURM client command against this cluster; its stdout."""
        done = subprocess.run(
            [which(command), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **self.environ()},
            timeout=60,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{command} {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def jobs(self, state: str | None = None) -> list[str]:
        """IDs of this cluster's jobs (``RUNNING``, ``PENDING``, …; None: all not ended)."""
        args = ["--noheader", "--format=%i"]
        if state:
            args.append(f"--states={state}")
        return self.run("squeue", *args).split()

    def set_node(self, state: str, reason: str = "auroradask test") -> None:
        """``drain`` (no new jobs start) or ``resume`` the node."""
        extra = [f"reason={reason}"] if state == "drain" else []
        self.run("scontrol", "update", f"nodename={self.node}", f"state={state}", *extra)

    def logs(self) -> str:
        parts = []
        for path in sorted((self.folder / "log").glob("*")):
            text = path.read_text(errors="replace")[-3000:]
            parts.append(f"--- {path.name}\n{text}")
        return "\n".join(parts)

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        """Cancel what is left, then stop slurmd, slurmctld and munged, by PID."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self.run("scancel", "--full", "--partition", self.partition, check=False)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def __enter__(self) -> LocalSlurm:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
