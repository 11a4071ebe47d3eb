"""Shared fixtures: the real data folder beside the project, small NWB factories, snakemake runner."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC
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


import numpy as np  # noqa: E402  (after the thread settings above)
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("NER_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))
PAPER = REAL / "ner_paper_preprocessed"
MAZE_TEST_NWB = REAL / "mc_maze_small_test" / "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
CHIPS = REAL / "limblab_chips_area2_trialdata"
CHEWIE = PAPER / "Chewie_20161007_neural_con_dis_index.mat"

requires_real = pytest.mark.skipif(
    not REAL.is_dir(), reason=f"real data folder {REAL} is absent (set NER_REAL_DATA to point at it)"
)


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


def write_nwb(
    path, *, trials=True, behavior=True, nan_velocity=False, lab="Miller", n_trials=12, areas=("M1", "PMd"), seed=0
):
    """A small but complete NWB file in the DANDI 000688 layout, with parts left out on request.

    Trials of 2 s every 2.5 s, go cue 0.5 s after start, reaches along the target direction peaking
    0.5 s after the go cue; units tuned to velocity.
    """
    from datetime import datetime

    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import BehavioralTimeSeries

    rng = np.random.default_rng(seed)
    nwb = NWBFile(
        session_description="test",
        identifier=f"test-{seed}",
        lab=lab,
        session_start_time=datetime(2016, 10, 7, tzinfo=UTC),
    )
    device = nwb.create_device("array")
    for area in areas:
        group = nwb.create_electrode_group(f"electrode_group_{area}", description=area, location=area, device=device)
        for _ in range(4):
            nwb.add_electrode(location=area, group=group, group_name=group.name)
    duration = 2.5 * n_trials + 1
    rate = 500.0
    tt = np.arange(int(duration * rate)) / rate
    vel = np.zeros((len(tt), 2))
    starts = 0.5 + 2.5 * np.arange(n_trials)
    dirs = np.deg2rad(45.0 * (np.arange(n_trials) % 8))
    for s, d in zip(starts, dirs):
        speed = 20 * np.exp(-0.5 * ((tt - (s + 1.0)) / 0.12) ** 2)
        vel += speed[:, None] * np.array([np.cos(d), np.sin(d)])
    if nan_velocity:
        vel[(tt > starts[3] + 0.8) & (tt < starts[3] + 0.9)] = np.nan
    n_units = 4 * len(areas)
    for u in range(n_units):
        pd = rng.uniform(0, 2 * np.pi)
        lam = 5 + 0.8 * np.clip(vel @ np.array([np.cos(pd), np.sin(pd)]), 0, None)
        lam = np.nan_to_num(lam, nan=5.0)
        spikes = tt[rng.random(len(tt)) < lam / rate] + rng.uniform(0, 1 / rate)
        nwb.add_unit(spike_times=np.sort(spikes), electrodes=[u])
    if trials:
        nwb.add_trial_column("result", "outcome")
        nwb.add_trial_column("go_cue_time", "go cue")
        nwb.add_trial_column("target_dir", "radians")
        for i, (s, d) in enumerate(zip(starts, dirs)):
            nwb.add_trial(
                start_time=s, stop_time=s + 2.0, result="R" if i != 5 else "A", go_cue_time=s + 0.5, target_dir=d
            )
    if behavior:
        module = nwb.create_processing_module("behavior", "kinematics")
        container = BehavioralTimeSeries(name="Velocity")
        container.add_timeseries(TimeSeries(name="cursor_vel", data=vel, unit="cm/s", rate=rate, starting_time=0.0))
        module.add(container)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


@pytest.fixture
def session_row():
    """A sheet row as the workflow passes it to the stages."""
    return {
        "session_id": "T-1",
        "subject": "T",
        "date": "2016-10-07",
        "year": 2016,
        "hemisphere": "left",
        "task": "center_out",
        "format": "nwb",
        "path": "t.nwb",
        "areas": "M1,PMd",
        "area_list": ["M1", "PMd"],
    }


@pytest.fixture
def prep_config():
    """The default preprocessing block (schema defaults)."""
    from pipeline.config import validate_config

    return validate_config({"sessions": "x", "data_dir": "y"})["preprocessing"]


def make_workflow_copy(parent: Path) -> Path:
    """A private working copy of the workflow in ``parent/wf`` (so runs write results/ and logs/ there).

    profiles/ and envs/ are symlinked; the Snakefile, Makefile, workflow/, config/ and pipeline/ are copied so
    that the copy imports and fingerprints its own package, and a test may edit any of them.
    """
    import shutil

    work = Path(parent) / "wf"
    work.mkdir()
    for name in ("profiles", "envs"):
        (work / name).symlink_to(ROOT / name)
    for name in ("Snakefile", "Makefile"):
        shutil.copy(ROOT / name, work / name)
    for name in ("workflow", "config", "pipeline"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    return work


@pytest.fixture
def workflow_copy(tmp_path):
    """A private working copy of the workflow (see :func:`make_workflow_copy`)."""
    return make_workflow_copy(tmp_path)


@pytest.fixture(scope="session")
def chewie_prepared(tmp_path_factory):
    """Chewie 2016-10-07 through our nermat reader and `prepare` (the paper's 40-bin window)."""
    from pipeline.config import validate_config
    from pipeline.io import ingest
    from pipeline.prepare import prepare

    if not CHEWIE.is_file():
        pytest.skip(f"{CHEWIE} is absent")
    folder = tmp_path_factory.mktemp("chewie")
    row = {
        "session_id": "Chewie-20161007",
        "subject": "Chewie",
        "date": "2016-10-07",
        "year": 2016,
        "hemisphere": "left",
        "task": "center_out",
        "format": "nermat",
        "area_list": ["M1", "PMd"],
    }
    ingest(
        CHEWIE,
        folder / "ingest.zarr",
        fmt="nermat",
        areas=["M1", "PMd"],
        session=row["session_id"],
        reader_options={"trial_bins": 40},
    )
    prep = validate_config({"sessions": "x", "data_dir": "y"})["preprocessing"]
    prepare(folder / "ingest.zarr", folder / "prepared.zarr", session=row, preprocessing=prep, threads=2)
    return folder / "prepared.zarr"


@pytest.fixture(scope="session")
def chewie_ner(chewie_prepared, tmp_path_factory):
    """NER trained once on the real Chewie 2016-10-07 M1 cell by the training stage, with the paper's
    settings but 2 000 instead of 20 000 iterations: (embedding store, model folder). Shared by
    tests/test_ner.py (scores, checkpoint) and tests/test_peer_methods.py (NER vs CEBRA-3D), and trained
    once for all pytest-xdist workers (a file lock in their common folder; the store is written
    atomically, so its presence means a finished training). xdist_group marks alone did not keep the two
    tests on one worker: measured, both workers trained it."""
    from filelock import FileLock

    from pipeline.training import train_embedding

    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "chewie_ner"
    store, model_dir = folder / "emb.zarr", folder / "model"
    with FileLock(str(folder) + ".lock"):
        if not store.exists():
            train_embedding(
                chewie_prepared,
                store,
                model_dir,
                method="ner",
                params={"max_iterations": 2000},
                area="M1",
                seed=0,
                labels={"velocity_scale": 10.0, "use_direction": True, "maze_velocity_scale": 1.0},
                device={"prefer": "cpu", "allow_cpu": True, "wait_s": 0},
                code_fingerprint="fp",
                threads=TEST_THREADS,
            )
    return store, model_dir


# --- the tiny workflow of the caching test (tests/config/tiny.yaml) ------------------------------
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
    """Configure a working copy with tests/config/tiny.yaml and write its three recordings."""
    import shutil

    from pipeline.config import load_sheet

    for name in ("tiny.yaml", "tiny_sessions.tsv"):
        shutil.copy(ROOT / "tests/config" / name, work / "config" / name)
    for sid in load_sheet(work / "config/tiny_sessions.tsv").index:
        write_tiny_recording(work, sid)
    return work


@pytest.fixture
def tiny_workflow(workflow_copy):
    """A working copy configured with tests/config/tiny.yaml and its three recordings written."""
    return install_tiny(workflow_copy)


# --- the demo, run once exactly as `make demo` runs it, shared by the end-to-end tests ------------
DEMO_METHODS = ["ner", "cebra", "cebra16d", "pivae", "pca", "dpca", "umap", "umap_labels"]
#: latent dimensions the demo's methods embed into (the others: 3)
DIMS = {"cebra16d": 16, "umap": 2, "umap_labels": 2}


def demo_cells(method, work=ROOT, session=None):
    """(session, area) cells the demo config trains {method} on (its `areas` and `tasks`), sheet order."""
    from pipeline.config import load_config, load_sheet

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


@pytest.fixture(scope="session", autouse=True)
def background_demo(request, tmp_path_factory):
    """Starts ``make demo`` at the beginning of the test session when any selected test needs it, so that it
    runs while the other tests do (the tests on it are ordered last: :func:`pytest_collection_modifyitems`).
    None when no selected test needs it or ``NER_TEST_DEMO_RUN`` names a finished run."""
    if os.environ.get(DEMO_RUN_ENV) or not any(needs_demo(item) for item in request.session.items):
        yield None
        return
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # xdist: the workers' common folder
    demo = BackgroundDemo(shared / "demo_run").start()
    # The demo is the longest chain of the run (its tests come after it): it keeps the priority it was
    # started with, this test process (and what it starts from now on) yields to it and takes the cores
    # the demo leaves idle.
    os.nice(10)
    yield demo
    if demo.proc is not None and not demo.done():
        # still running when this process's tests are over: under xdist other workers may still wait for it;
        # otherwise no test needs it any more (a run stopped early: -x, Ctrl-C, a deselected tail)
        if os.environ.get("PYTEST_XDIST_WORKER") and not (request.session.shouldfail or request.session.shouldstop):
            demo.proc.wait(timeout=DEMO_TIMEOUT_S)
        else:
            demo.stop()


@pytest.fixture(scope="session")
def demo_run(background_demo):
    """The built-in demo run to completion by ``make demo`` in a private working copy: every method, every
    group, the maze analysis and the HTML report. Returns (working copy, make's CompletedProcess).

    It starts in the background with the test session (:func:`background_demo`); this waits for it. Shared
    by the tests: never modify it; take a private copy with the ``demo_done`` fixture. With
    ``NER_TEST_DEMO_RUN=<folder>`` (a working copy an earlier ``demo_run`` finished) it is reused as is.
    """
    reuse = os.environ.get(DEMO_RUN_ENV)
    if reuse:
        work = Path(reuse)
        if not (work / "results/report.html").is_file():
            raise pytest.UsageError(f"{DEMO_RUN_ENV}={reuse}: no finished demo run there (results/report.html)")
        return work, subprocess.CompletedProcess(
            [], 0, "", (work / "demo_run.log").read_text() if (work / "demo_run.log").is_file() else ""
        )
    return background_demo.result()


@pytest.fixture
def demo_done(demo_run, tmp_path):
    """A private copy of the completed demo (timestamps and Snakemake's records kept, so it is up to date
    exactly as the original); a test may change and rerun anything in it."""
    import shutil

    work = tmp_path / "wf"
    shutil.copytree(demo_run[0], work, symlinks=True)
    return work


def pytest_collection_modifyitems(config, items):
    """The tests on the shared demo run last (stable: each part keeps the files' order). The demo itself
    starts in the background with the first test (:func:`background_demo`), so that the other tests fill
    the cores meanwhile and find it finished, or nearly, when their turn comes."""
    items.sort(key=needs_demo)
