"""A real single-node SLURM cluster on this host, started and stopped around a test.

Needs root and the Debian packages ``slurm-wlm`` and ``munge`` (listed in envs/apt.txt). The cluster
uses ``/etc/slurm/slurm.conf`` because ``srun`` inside a job only looks there; an existing conf is
backed up and put back on exit. State, spool, pid and log files live in a work folder.

Typical use in a test::

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with SingleNodeSlurm(workdir=tmp_path / "slurm") as cluster:
        subprocess.run(["sbatch", "--wait", "--wrap", "hostname"], check=True)
        assert cluster.submitted_job_ids()

Snakemake's SLURM executor then needs ``--executor slurm --slurm-status-command squeue`` (there is no
accounting store, so ``sacct`` fails) and ``slurm_partition=<cluster.partition>``.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

SLURM_CONF = Path("/etc/slurm/slurm.conf")
SLURM_CONF_BACKUP = SLURM_CONF.with_name("slurm.conf.before-tests")
GRES_CONF = SLURM_CONF.with_name("gres.conf")  # slurmd reads it from beside slurm.conf
GRES_CONF_BACKUP = GRES_CONF.with_name("gres.conf.before-tests")
CONF_MARKER = "# Written by tests/support/slurm_cluster.py for a throwaway test cluster; removed again when it stops."
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN_DIR = Path("/run/munge")
BINARIES = ("munge", "munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel")
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
_SUBMIT_LINE = re.compile(r"_slurm_rpc_submit_batch_job: JobId=(\d+)")


class SlurmUnavailable(RuntimeError):
    """The test cluster cannot run here, or failed to start; the message says why."""


class Job(NamedTuple):
    """One job the controller still remembers (for ``MinJobAge`` = 1 h after it ends).

    Attributes:
        job_id: SLURM job id.
        name: Job name; Snakemake's SLURM executor names all jobs of a run after the run's UUID.
        state: E.g. PENDING, RUNNING, COMPLETED, FAILED, CANCELLED.
        comment: ``sbatch --comment``; Snakemake's SLURM executor puts ``rule_<rule name>`` here.
    """

    job_id: int
    name: str
    state: str
    comment: str


def unavailable_reason() -> str | None:
    """Say why a cluster cannot start here, without starting anything.

    Returns:
        None when `SingleNodeSlurm` can be tried; otherwise a one-line reason for ``pytest.skip``.
    """
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "a SLURM test cluster needs Linux"
    if os.geteuid() != 0:
        return "a SLURM test cluster needs root (slurmd runs jobs as root and /etc/slurm/slurm.conf is written)"
    missing = [name for name in BINARIES if _which(name) is None]
    if missing:
        return f"{', '.join(missing)} not found; install envs/apt.txt with `make system-packages`"
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "user 'munge' is missing; reinstall the munge package"
    for daemon in ("slurmctld", "slurmd"):
        pids = _pids_named(daemon)
        if pids:
            whose = (
                "is a test cluster's (running, or left by a crashed run)"
                if _is_ours(SLURM_CONF)
                else "was not written by tests/support/slurm_cluster.py"
            )
            return f"{daemon} is already running (pid {', '.join(map(str, pids))}; {SLURM_CONF} {whose})"
    return None


class SingleNodeSlurm:
    """Context manager running munged (if needed), slurmctld and slurmd for one node.

    Attributes:
        partition: The default (and only) partition, e.g. for ``slurm_partition=``.
        node: The node's name, this host's short name.
        workdir: Folder with the cluster's state, spool and pid files.
        log_dir: Folder with ``slurmctld.log``, ``slurmd.log`` and the daemons' own output.
    """

    def __init__(
        self,
        workdir: str | os.PathLike | None = None,
        partition: str = "pytest",
        timeout: float = 60.0,
        gpus: int = 0,
        cpus: int | None = None,
    ):
        """Prepare, but do not start, a cluster.

        Args:
            workdir: Folder for state and logs, emptied at start and kept afterwards (pass a pytest ``tmp_path``
                to keep the logs of a failed test). When None, a temporary folder is made and removed on stop.
            partition: Name of the partition.
            timeout: Seconds to wait for each daemon to come up.
            gpus: Number of GPUs the node declares as generic resources (``gres/gpu``), so that jobs asking
                ``--gpus=N`` are scheduled, counted against the node's cards and given ``CUDA_VISIBLE_DEVICES``.
                They are stand-ins (``/dev/null``-like character devices): nothing runs on them.
            cpus: CPUs the node declares, when more than it has (``SlurmdParameters=config_overrides``), so
                that several jobs run at once as on a many-core node; None declares what ``slurmd -C`` finds.
        """
        self.partition = partition
        self.gpus = gpus
        self.cpus = cpus
        self.node = socket.gethostname().split(".")[0]
        self.timeout = timeout
        self._given_workdir = Path(workdir) if workdir is not None else None
        self.workdir: Path | None = None
        self.log_dir: Path | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        self._stepd_before: set[int] = set()

    # ----------------------------------------------------------------------------------------- start
    def __enter__(self) -> SingleNodeSlurm:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        """Start the daemons and wait until the node is idle.

        Raises:
            SlurmUnavailable: prerequisites are missing or a daemon did not come up (with its log tail).
        """
        if self._procs:
            raise RuntimeError("this cluster is already running")
        reason = unavailable_reason()
        if reason:
            raise SlurmUnavailable(reason)
        if self._given_workdir is not None:
            self.workdir = self._given_workdir
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="slurm-cluster-"))
        self.log_dir = self.workdir / "log"
        for sub in ("log", "state", "spool"):  # emptied, so a reused workdir starts a fresh cluster
            shutil.rmtree(self.workdir / sub, ignore_errors=True)
            (self.workdir / sub).mkdir()
        self._stepd_before = set(_pids_named("slurmstepd"))
        atexit.register(self.stop)
        try:
            self._start_munged()
            self._install_conf()
            self._spawn("slurmctld", [_which("slurmctld"), "-D"])
            self._spawn("slurmd", [_which("slurmd"), "-D"])
            self._wait_until_idle()
        except BaseException:
            self.stop()
            raise

    def _start_munged(self) -> None:
        if _munge_works():
            return  # someone else's munged; leave it alone
        munge = pwd.getpwnam("munge")
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(mode=0o700, exist_ok=True)
            os.chown(MUNGE_KEY.parent, munge.pw_uid, munge.pw_gid)
            fd = os.open(MUNGE_KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "wb") as key:
                key.write(os.urandom(1024))
            os.chown(MUNGE_KEY, munge.pw_uid, munge.pw_gid)
        # munged refuses a socket folder it does not own; /run is a tmpfs, so it may be gone after a reboot.
        for folder, mode in ((MUNGE_RUN_DIR, 0o755), (Path("/var/lib/munge"), 0o711), (Path("/var/log/munge"), 0o700)):
            folder.mkdir(mode=mode, parents=True, exist_ok=True)
            os.chown(folder, munge.pw_uid, munge.pw_gid)
        # -F keeps it in the foreground so the pid is ours; --force replaces a stale socket of a dead munged.
        self._spawn("munged", [_which("munged"), "-F", "--force"], user=munge.pw_uid, group=munge.pw_gid)
        deadline = time.monotonic() + self.timeout
        while not _munge_works():
            self._check_alive()
            if time.monotonic() > deadline:
                raise SlurmUnavailable(f"munged did not answer within {self.timeout:.0f} s\n{self._tail('munged')}")
            time.sleep(0.2)

    def _install_conf(self) -> None:
        """Write slurm.conf (and gres.conf for stand-in GPUs), backing up a site's own files."""
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        files = [(SLURM_CONF, SLURM_CONF_BACKUP, self._conf_text())]
        if self.gpus:
            files.append((GRES_CONF, GRES_CONF_BACKUP, self._gres_text()))
        for path, backup, text in files:
            if path.exists() and not _is_ours(path):
                os.replace(path, backup)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            tmp.chmod(0o644)
            os.replace(tmp, path)

    def _gres_text(self) -> str:
        """gres.conf for ``self.gpus`` stand-in cards: character devices made in the work folder with the
        numbers of /dev/null (slurmd only stats them; task/none confines nothing)."""
        dev = self.workdir / "dev"
        dev.mkdir(exist_ok=True)
        null = os.stat("/dev/null").st_rdev
        for i in range(self.gpus):
            node = dev / f"gpu{i}"
            if not node.exists():
                os.mknod(node, 0o666 | stat.S_IFCHR, null)
        return f"{CONF_MARKER}\nAutoDetect=off\nName=gpu File={dev}/gpu[0-{self.gpus - 1}]\n"

    def _conf_text(self) -> str:
        w, log = self.workdir, self.log_dir
        return f"""{CONF_MARKER}
# Work folder: {w}
ClusterName=pytest
SlurmctldHost={self.node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# Snakemake's squeue status check needs finished jobs listed for >= 3 x its first check interval.
MinJobAge=3600
KillWait=5
StateSaveLocation={w}/state
SlurmdSpoolDir={w}/spool
SlurmctldPidFile={w}/slurmctld.pid
SlurmdPidFile={w}/slurmd.pid
SlurmctldLogFile={log}/slurmctld.log
SlurmdLogFile={log}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
{"GresTypes=gpu" if self.gpus else ""}
{"SlurmdParameters=config_overrides" if self.cpus else ""}
{self._node_line()}
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""

    def _node_line(self) -> str:
        """The node as ``slurmd -C`` sees it, with RealMemory lowered so jobs can never ask for too much."""
        mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        hardware = f"CPUs={os.cpu_count() or 1}"
        probe = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, timeout=30)
        match = re.search(r"^NodeName=\S+ (CPUs=.*?) RealMemory=(\d+)", probe.stdout, re.MULTILINE)
        if match:
            hardware, mem_mb = match[1], min(mem_mb, int(match[2]))
        if self.cpus:
            hardware = f"CPUs={self.cpus}"
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        return (
            f"NodeName={self.node} NodeAddr=127.0.0.1 {hardware} RealMemory={max(mem_mb * 9 // 10, 1)}{gres} "
            "State=UNKNOWN"
        )

    def _spawn(self, name: str, argv: list[str], **kwargs) -> None:
        with open(self.log_dir / f"{name}.out", "ab") as out:
            self._procs[name] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
                **kwargs,
            )  # a Ctrl-C in pytest must not kill them before stop() runs

    def _wait_until_idle(self) -> None:
        deadline, state = time.monotonic() + self.timeout, ""
        while time.monotonic() < deadline:
            self._check_alive()
            state = _run(["sinfo", "-h", "-n", self.node, "-o", "%T"]).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise SlurmUnavailable(
            f"node {self.node} not idle after {self.timeout:.0f} s (sinfo says {state!r})\n"
            f"{self._tail('slurmctld')}\n{self._tail('slurmd')}"
        )

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise SlurmUnavailable(f"{name} exited with code {proc.returncode} while starting\n{self._tail(name)}")

    def _tail(self, name: str, lines: int = 20) -> str:
        texts = []
        for path in (self.log_dir / f"{name}.log", self.log_dir / f"{name}.out"):
            if path.is_file() and path.stat().st_size:
                texts.append(f"--- {path}:\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts) or f"--- no log from {name} in {self.log_dir}"

    # ----------------------------------------------------------------------------------------- query
    def submitted_job_ids(self) -> list[int]:
        """Ids of all batch jobs the controller accepted since it started, from its log.

        Unlike `jobs`, this never forgets a job.
        """
        if self.log_dir is None:
            raise RuntimeError("cluster not started, or stopped and its temporary workdir removed (pass workdir=)")
        log = self.log_dir / "slurmctld.log"
        text = log.read_text(errors="replace") if log.is_file() else ""
        return [int(job_id) for job_id in _SUBMIT_LINE.findall(text)]

    def jobs(self) -> list[Job]:
        """Jobs the controller remembers (pending, running and, for MinJobAge = 1 h, finished ones)."""
        out = _run(["squeue", "-h", "--states=all", "-o", "%i|%T|%j|%k"], check=True).stdout
        rows = (line.split("|", 3) for line in out.splitlines() if line.strip())
        return sorted(Job(int(job_id), name, state, comment) for job_id, state, name, comment in rows)

    # ------------------------------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Cancel remaining jobs, stop the daemons this object started and restore the conf.

        Safe to call more than once, and called at interpreter exit if a test forgot to.
        """
        atexit.unregister(self.stop)
        ctld = self._procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            self._cancel_all_jobs()
        for name in ("slurmd", "slurmctld", "munged"):  # munged last: slurm needs it to shut down cleanly
            proc = self._procs.pop(name, None)
            if proc is not None:
                _terminate(proc.pid, proc.wait)
        for pid in set(_pids_named("slurmstepd")) - self._stepd_before:  # job steps outlive slurmd
            _terminate(pid, None)
        self._restore_conf()
        if self._given_workdir is None and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = self.log_dir = None

    def _cancel_all_jobs(self) -> None:
        ids = _run(["squeue", "-h", "-o", "%i"]).stdout.split()
        if not ids:
            return
        _run(["scancel", *ids])
        deadline = time.monotonic() + 15
        while _run(["squeue", "-h", "-o", "%i"]).stdout.split() and time.monotonic() < deadline:
            time.sleep(0.5)

    def _restore_conf(self) -> None:
        """Put a site's own conf files back (also those an earlier, crashed run left backed up)."""
        for path, backup in ((SLURM_CONF, SLURM_CONF_BACKUP), (GRES_CONF, GRES_CONF_BACKUP)):
            if _is_ours(path):
                path.unlink()
            if backup.exists() and not path.exists():
                os.replace(backup, path)


def _which(name: str) -> str | None:
    return shutil.which(name, path=_SEARCH_PATH)


def _run(argv: list[str], check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_which(argv[0]) or argv[0], *argv[1:]], capture_output=True, text=True, timeout=30, check=check
    )


def _munge_works() -> bool:
    try:
        return subprocess.run([_which("munge"), "-n"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _is_ours(path: Path) -> bool:
    try:
        with open(path) as f:
            return f.readline().rstrip("\n") == CONF_MARKER
    except OSError:
        return False


def _pids_named(name: str) -> list[int]:
    """Live (not zombie) processes whose command name is exactly ``name``, read from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :][:1]
        if comm == name and state != "Z":
            pids.append(int(entry.name))
    return sorted(pids)


def _terminate(pid: int, wait, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` s; ``wait`` reaps our own child (Popen.wait)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if wait is not None:
            try:
                wait(timeout=timeout)
                return
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if not _alive(pid):
            return
    if wait is not None:
        wait()


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
