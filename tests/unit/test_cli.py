"""The ``pipeline`` command: validate, inspect, methods, simulate (provenance and digest: test_provenance.py).

Each subcommand is run as a user would (``main(argv)``, the console script's entry point) on real files:
the shipped configs, a recording the ``simulate`` subcommand writes, read back by our NWB reader and
written as a store that ``inspect`` describes."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from pipeline.cli import main
from pipeline.stages.config import config_schema
from tests.support.paths import ROOT


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """One short simulated center-out recording written by `pipeline simulate`."""
    out = tmp_path_factory.mktemp("sim") / "SimX-20161007.nwb"
    assert main(["simulate", str(out), "--areas", "M1", "PMd", "--trials", "24", "--seed", "3"]) == 0
    return out


def test_every_subcommand_has_help():
    for command in ("validate", "check", "inspect", "methods", "simulate", "provenance", "digest"):
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", command, "--help"], capture_output=True, text=True, cwd=ROOT
        )
        assert proc.returncode == 0 and "usage: pipeline" in proc.stdout, (command, proc.stderr)


def test_simulate_writes_a_recording_our_reader_reads(recording):
    from pipeline.io import read_recording

    assert recording.with_name("SimX-20161007_truth.npz").is_file()
    ds = read_recording(recording, fmt="nwb", areas=["M1", "PMd"], session="SimX-20161007")
    assert ds.sizes["trial"] == 24 and set(ds["area"].values) == {"M1", "PMd"}
    assert main(["simulate", str(recording.with_suffix(".h5"))]) == 2  # refused: not .nwb


def test_inspect_describes_a_store(recording, tmp_path, capsys):
    from pipeline.stages.rules.ingest import run as ingest

    store = tmp_path / "ingest.zarr"
    ingest(recording, store, fmt="nwb", areas=["M1"], session="SimX-20161007")
    capsys.readouterr()
    assert main(["inspect", str(store)]) == 0
    out = capsys.readouterr().out
    assert "(layout spikes)" in out and "trial=24" in out
    assert "no provenance record" in out  # written outside a workflow job
    assert main(["inspect", str(tmp_path)]) == 2
    assert "not a readable zarr v3 store" in capsys.readouterr().err


def test_methods_lists_the_registry_with_the_schema_defaults(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ("ner", "cebra", "cebra16d", "pivae", "pca", "dpca", "umap", "umap_labels"):
        assert f"\n{name}  (" in f"\n{out}"
    ner = config_schema()["properties"]["methods"]["properties"]["ner"]["properties"]["params"]["properties"]
    assert ner["max_iterations"]["default"] == 20000 and "max_iterations         20000" in out
    assert main(["methods", "ner"]) == 0
    assert ner["precision"]["description"] in capsys.readouterr().out
    assert main(["methods", "nerf"]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("registered: ner, cebra, cebra16d, pivae, pca, dpca, umap, umap_labels")
    )


def test_validate_the_shipped_configs_and_a_lab_config(recording, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["validate", "config/config.yaml"]) == 0
    out = capsys.readouterr().out
    assert "(simulated)" in out and "m1_simc" in out
    assert main(["check", "config/config.yaml", "config/demo_full.yaml"]) == 0  # the old name still works
    capsys.readouterr()

    # a lab's own data: the sheet names a recording that is not there -> one line naming sheet and field
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    shutil.copy(recording, tmp_path / "data" / recording.name)
    sheet = tmp_path / "sessions.tsv"
    sheet.write_text(
        "session_id\tsubject\tdate\themisphere\ttask\tformat\tpath\tareas\n"
        "SimX-20161007\tSimX\t2016-10-07\tleft\tcenter_out\tnwb\tSimX-20161007.nwb\tM1,PMd\n"
        "SimX-20161008\tSimX\t2016-10-08\tleft\tcenter_out\tnwb\tSimX-20161008.nwb\tM1,PMd\n"
    )
    config = {"sessions": str(sheet), "data_dir": "data", "simulation": {"enabled": False}}
    (tmp_path / "lab.yaml").write_text(yaml.safe_dump(config))
    assert main(["validate", "lab.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "SimX-20161008.path" in err and str(sheet) in err
    sheet.write_text("\n".join(sheet.read_text().splitlines()[:2]) + "\n")
    assert main(["validate", "lab.yaml"]) == 0
    assert "1 in" in capsys.readouterr().out
    (tmp_path / "lab.yaml").write_text(yaml.safe_dump({**config, "seeds": ["zero"]}))
    assert main(["validate", "lab.yaml"]) == 2
    assert "seeds" in capsys.readouterr().err
