"""Running the workflow from tests: thread limits, the snakemake runner and the parsing of its job blocks,
private working copies, the tiny caching workflow and the shared background demo.

Imported by tests/conftest.py before numpy (the thread settings below must precede it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

# The test process's share of the cores for BLAS, OpenMP and torch, set before numpy or torch load them:
# the shared `make demo` runs in the background on DEMO_CORES cores meanwhile (tests/conftest.py:
# background_demo), and under pytest-xdist the workers split the rest. Without this, torch's OpenMP threads
# spin against the demo's jobs: measured on 2 cores, an in-process NER training took 13x its time. Workflow
# runs the tests start (`make demo`, snakemake) get the user's own settings back (:func:`workflow_env`):
# they train and decode exactly as a user's run would, which their bit-identity checks rely on.
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_USER_THREADS = {var: os.environ.get(var) for var in _THREAD_VARS}
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
DEMO_CORES = 2  # the Makefile's CORES, which `make demo` uses
TEST_THREADS = max(1, ((os.cpu_count() or 1) - DEMO_CORES) // _WORKERS)
for _var in _THREAD_VARS:
    os.environ[_var] = str(TEST_THREADS)


def workflow_env(extra: dict | None = None) -> dict:
    """The environment for a workflow run started by a test: this one without the worker's thread limits."""
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
    env.update({var: value for var, value in _USER_THREADS.items() if value is not None})
    return {**env, **(extra or {})}


from tests.support.paths import ROOT  # noqa: E402


def snakemake(*args, cwd=ROOT, check=True, timeout=1200, env=None):
    """Run the snakemake CLI of this environment (``env`` adds variables); returns the CompletedProcess."""
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run(
        [str(exe), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=workflow_env(env)
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(map(str, args))} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def job_blocks(text: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, {field: value}) of every job block Snakemake printed: a ``rule <name>:`` (or
    ``localrule``) line and its indented ``field: value`` lines (input, output, wildcards, resources...).
    Dry runs print them on stdout, real runs on stderr."""
    return [
        (m.group(1), dict(re.findall(r"^    (\w+): (.*)$", m.group(2), re.M)))
        for m in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n?)*)", text, re.M)
    ]


def listed(value: str) -> list[str]:
    """A job block's list field (``input``, ``output``) as paths."""
    return [p for p in value.split(", ") if p]


def keyed(value: str) -> dict[str, str]:
    """A job block's ``k=v, ...`` field (``wildcards``, ``resources``) as a dict."""
    return dict(kv.split("=", 1) for kv in value.split(", ") if "=" in kv)


def make_workflow_copy(parent: Path) -> Path:
    """A private working copy of the workflow in ``parent/wf`` (so runs write results/ and logs/ there).

    profiles/ and envs/ are symlinked; the Makefile, workflow/ (with the Snakefile), config/ and pipeline/ are copied so
    that the copy imports and fingerprints its own package, and a test may edit any of them.
    """
    import shutil

    work = Path(parent) / "wf"
    work.mkdir()
    for name in ("profiles", "envs"):
        (work / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "Makefile", work / "Makefile")
    for name in ("workflow", "config", "pipeline"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    return work


# --- the tiny workflow of the caching test (tests/workflow/config/tiny.yaml) ------------------------------
TINY_CONFIG = ("--configfile", "config/config.yaml", "config/tiny.yaml")
TINY_SIMULATION = {"center_out": {"n_trials": 48, "units": {"M1": 12, "PMd": 10}}}


def write_tiny_recording(work, session_id, *, seed=7, hemisphere=None, date=None, areas=("M1", "PMd")):
    """Write one short center-out recording of the tiny sheet as a real NWB file (the lab's data)."""
    from pipeline.simulate import simulate_session

    date = date or f"{session_id[-8:-4]}-{session_id[-4:-2]}-{session_id[-2:]}"
    folder = Path(work) / "resources/tiny"
    folder.mkdir(parents=True, exist_ok=True)
    simulate_session(
        folder / f"{session_id}.nwb",
        folder / f"{session_id}_truth.npz",
        session_id=session_id,
        subject="Tiny",
        date=date,
        hemisphere=hemisphere or ("right" if date < "2016" else "left"),
        task="center_out",
        areas=list(areas),
        seed=seed,
        params=TINY_SIMULATION,
    )
    return folder / f"{session_id}.nwb"


def install_tiny(work: Path) -> Path:
    """Configure a working copy with tests/workflow/config/tiny.yaml and write its three recordings."""
    import shutil

    from pipeline.stages.config import load_sheet

    for name in ("tiny.yaml", "tiny_sessions.tsv"):
        shutil.copy(ROOT / "tests/workflow/config" / name, work / "config" / name)
    for sid in load_sheet(work / "config/tiny_sessions.tsv").index:
        write_tiny_recording(work, sid)
    return work


# --- the demo, run once exactly as `make demo` runs it, shared by the end-to-end tests ------------
DEMO_METHODS = ["ner", "cebra", "cebra16d", "pivae", "pca", "dpca", "umap", "umap_labels"]
#: latent dimensions the demo's methods embed into (the others: 3)
DIMS = {"cebra16d": 16, "umap": 2, "umap_labels": 2}


def demo_cells(method, work=ROOT, session=None):
    """(session, area) cells the demo config trains {method} on (its `areas` and `tasks`), sheet order."""
    from pipeline.stages.config import load_config, load_sheet

    block = load_config(Path(work) / "config/config.yaml")["methods"][method]
    sheet = load_sheet(Path(work) / "config/sessions.tsv")
    return [
        (sid, area)
        for sid, row in sheet.iterrows()
        if row["task"] in block["tasks"] and session in (None, sid)
        for area in row["area_list"]
        if block["areas"] is None or area in block["areas"]
    ]


#: developers only: a finished ``demo_run`` working copy to reuse instead of running the demo again
DEMO_RUN_ENV = "NER_TEST_DEMO_RUN"
VENV = Path(sys.executable).parent.parent  # the environment running the tests (make's VENV)


def demo_flags() -> list[str]:
    """The Snakemake flags `make demo` adds on this machine (the Makefile's ``RUN_FLAGS``: GPU slots and
    training threads), so that a test's rerun trains exactly as the demo did (same threads, same bits)."""
    out = subprocess.run(
        ["make", "-s", "--no-print-directory", "run-flags"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


#: how long a test waits for the background demo to finish
DEMO_TIMEOUT_S = 3600


def needs_demo(item) -> bool:
    """Whether a collected test uses the shared demo run (``demo_run`` or ``demo_done``)."""
    return "demo_run" in getattr(item, "fixturenames", ())


class BackgroundDemo:
    """``make demo`` in a private working copy (``<root>/wf``), started once per test run and left to run in
    the background while the other tests use the cores; the tests on it wait for it (:meth:`result`).

    Under pytest-xdist the workers share ``root`` (the run's base temporary folder): whichever worker comes
    first starts it, under a file lock. The run's exit status lands in ``<root>/rc`` when it ends, its
    output in ``wf/demo_run.log``.
    """

    def __init__(self, root: Path):
        self.root, self.work = Path(root), Path(root) / "wf"
        self.rc, self.log = self.root / "rc", self.work / "demo_run.log"
        self.proc: subprocess.Popen | None = None  # set in the process that started it

    def start(self) -> BackgroundDemo:
        from filelock import FileLock

        with FileLock(str(self.root) + ".lock"):
            if self.root.exists():
                return self  # another pytest worker started it
            self.root.mkdir(parents=True)
            make_workflow_copy(self.root)
            # the test environment is make's VENV; -o: never reinstall it from the copy's make
            script = (
                'make demo VENV="$1" -o "$1/.installed" > demo_run.log 2>&1; '
                "echo $? > ../rc.part && mv ../rc.part ../rc"
            )
            # its own process group (stop() ends all of it) but not its own session: with Linux's scheduler
            # autogroups a new session would get a fixed half of the CPU whatever the priorities below
            self.proc = subprocess.Popen(
                ["sh", "-c", script, "demo", str(VENV)], cwd=self.work, env=workflow_env(), process_group=0
            )
        return self

    def done(self) -> bool:
        return self.rc.is_file()

    def result(self, timeout: float = DEMO_TIMEOUT_S) -> tuple[Path, subprocess.CompletedProcess]:
        """Wait for the run; (working copy, make's CompletedProcess with the whole output as ``stderr``)."""
        import time

        deadline = time.monotonic() + timeout
        while not self.done():
            if time.monotonic() > deadline:
                raise AssertionError(f"make demo did not finish within {timeout:.0f} s (log: {self.log})")
            time.sleep(1.0)
        rc, text = int(self.rc.read_text()), self.log.read_text()
        if rc != 0:
            raise AssertionError(f"make demo failed (exit status {rc}; log: {self.log}):\n{text[-6000:]}")
        return self.work, subprocess.CompletedProcess(["make", "demo"], rc, "", text)

    def stop(self) -> None:
        """End a run this process started (after an interrupted or failed-fast test session)."""
        import signal

        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # sh, make, snakemake and its jobs
            self.proc.wait(timeout=120)
