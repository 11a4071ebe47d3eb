"""The package as a lab installs it: a wheel that works outside the repository (schemas included)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

from tests.support.paths import ROOT


def test_the_built_wheel_validates_a_config_and_runs_a_stage_outside_the_repository(tmp_path):
    """Build the wheel, install it (without dependencies: this environment has them) into a folder far
    from the checkout, and use it from there: its package data (the config and sheet schemas) is
    inside, validation fills the defaults, and simulate -> ingest runs on a real NWB file."""
    import shutil

    source, dist = tmp_path / "src", tmp_path / "dist"  # built from a copy: the build leaves no litter here
    shutil.copytree(ROOT / "pipeline", source / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(dist),
            str(source),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("ner_pipeline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    schemas = {
        "stages/schemas/config.schema.yaml",
        "stages/schemas/sessions.schema.yaml",
        "simulate/params.schema.yaml",
    }
    assert {f"pipeline/{name}" for name in schemas} <= names
    assert not any(name.startswith(("tests/", "workflow/", "benchmarks/")) for name in names)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    work = tmp_path / "lab"
    work.mkdir()
    script = """
import json, sys
import pipeline
from pipeline.stages.config import validate_config
from pipeline.stages.rules.ingest import run as ingest
from pipeline.simulate import simulate_session

config = validate_config({"sessions": "sheet.tsv", "data_dir": "."}, source="lab.yaml")
simulate_session("s.nwb", "s_truth.npz", session_id="Lab-20240101", subject="Lab", date="2024-01-01",
                 hemisphere="left", task="center_out", areas=["M1"], seed=1,
                 params={"center_out": {"n_trials": 16, "units": {"M1": 8}}})
ds = ingest("s.nwb", "ingest.zarr", fmt="nwb", areas=["M1"], session="Lab-20240101")
print(json.dumps({"package": pipeline.__file__, "bin_size_s": config["preprocessing"]["bin_size_s"],
                  "units": int(ds.sizes["unit"]), "trials": int(ds.sizes["trial"])}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(site)  # before the editable install of the checkout on sys.path
    proc = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["package"].startswith(str(site))  # the wheel's copy, not the repository's
    assert out["bin_size_s"] > 0 and out["units"] == 8 and out["trials"] > 0
    assert (work / "ingest.zarr" / "zarr.json").is_file()
