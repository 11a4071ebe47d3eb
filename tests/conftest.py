"""Fixtures shared by the tests; the helpers they use live in tests/support (a package)."""

from __future__ import annotations

# first: the thread limits of the test processes, set before numpy or torch load
from tests.support.workflow import (  # isort: skip
    DEMO_RUN_ENV,
    DEMO_TIMEOUT_S,
    TEST_THREADS,
    BackgroundDemo,
    install_tiny,
    make_workflow_copy,
    needs_demo,
)

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import CHEWIE, CHEWIE_ROW


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
    from pipeline.stages.config import validate_config

    return validate_config({"sessions": "x", "data_dir": "y"})["preprocessing"]


@pytest.fixture
def workflow_copy(tmp_path):
    """A private working copy of the workflow (see :func:`make_workflow_copy`)."""
    return make_workflow_copy(tmp_path)


@pytest.fixture(scope="session")
def chewie_prepared(tmp_path_factory):
    """Chewie 2016-10-07 through our nermat reader and `prepare` (the paper's 40-bin window)."""
    from pipeline.stages.config import validate_config
    from pipeline.stages.rules.ingest import run as ingest
    from pipeline.stages.rules.prepare import run as prepare

    if not CHEWIE.is_file():
        pytest.skip(f"{CHEWIE} is absent")
    folder = tmp_path_factory.mktemp("chewie")
    row = CHEWIE_ROW
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
    tests/realdata/test_ner.py (scores, checkpoint) and tests/realdata/test_peer_methods.py (NER vs CEBRA-3D),
    and trained once for all pytest-xdist workers (a file lock in their common folder; the store is written
    atomically, so its presence means a finished training). xdist_group marks alone did not keep the two
    tests on one worker: measured, both workers trained it."""
    from filelock import FileLock

    from pipeline.stages.rules.train import run as train_embedding

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


@pytest.fixture
def tiny_workflow(workflow_copy):
    """A working copy configured with tests/workflow/config/tiny.yaml and its three recordings written."""
    return install_tiny(workflow_copy)


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
