"""Bad inputs end in one clear error naming the file and the field, and leave no partial output."""

from __future__ import annotations

import pytest
import yaml

from pipeline.errors import InputError
from pipeline.stages.config import load_config, load_sheet, session_row, validate_config
from pipeline.stages.rules.ingest import run as ingest
from pipeline.stages.rules.prepare import run as prepare
from tests.support.nwb import write_nwb
from tests.support.paths import ROOT
from tests.support.workflow import snakemake


def _no_outputs(folder):
    return [p.name for p in folder.iterdir() if p.suffix == ".zarr" or ".tmp-" in p.name]


@pytest.mark.parametrize(
    "kwargs, field, words",
    [
        ({"trials": False}, "intervals/trials", "no trials table"),
        ({"behavior": False}, "processing/behavior", "no hand/cursor velocity"),
    ],
)
def test_missing_parts_of_an_nwb(tmp_path, kwargs, field, words):
    nwb = write_nwb(tmp_path / "bad.nwb", **kwargs)
    with pytest.raises(InputError) as err:
        ingest(nwb, tmp_path / "ingest.zarr", fmt="nwb", areas=["M1"], session="T-1")
    assert err.value.source.endswith("bad.nwb") and err.value.field == field and words in str(err.value)
    assert _no_outputs(tmp_path) == []


def test_nan_velocity_in_a_window(tmp_path, session_row, prep_config):
    nwb = write_nwb(tmp_path / "nan.nwb", nan_velocity=True)
    ingest(nwb, tmp_path / "ingest.zarr", fmt="nwb", areas=["M1"], session="T-1")
    with pytest.raises(InputError) as err:
        prepare(tmp_path / "ingest.zarr", tmp_path / "prepared.zarr", session=session_row, preprocessing=prep_config)
    assert err.value.field == "velocity" and "nan.nwb" in err.value.source and "trial 3" in str(err.value)
    assert not (tmp_path / "prepared.zarr").exists() and not list(tmp_path.glob(".prepared*"))
    # the explicit policy drops the trial instead, and says so
    ds = prepare(
        tmp_path / "ingest.zarr",
        tmp_path / "prepared.zarr",
        session=session_row,
        preprocessing=dict(prep_config, nan_policy="drop_trial"),
    )
    assert 3 not in ds["trial"].values and ds.attrs["trials_dropped"]["NaN velocity"] == 1


def test_unknown_format_and_area(tmp_path):
    nwb = write_nwb(tmp_path / "ok.nwb")
    with pytest.raises(InputError, match=r"ok\.nwb \[format\]: unknown format 'spikeglx'"):
        ingest(nwb, tmp_path / "a.zarr", fmt="spikeglx", areas=["M1"], session="T-1")
    with pytest.raises(InputError, match=r"ok\.nwb \[areas\]: area\(s\) \['S1'\] not in the file"):
        ingest(nwb, tmp_path / "b.zarr", fmt="nwb", areas=["M1", "S1"], session="T-1")
    assert _no_outputs(tmp_path) == []


def test_not_an_nwb_file(tmp_path):
    junk = tmp_path / "junk.nwb"
    junk.write_text("hello")
    with pytest.raises(InputError, match=r"junk\.nwb: not a readable NWB"):
        ingest(junk, tmp_path / "a.zarr", fmt="nwb", areas=["M1"], session="T-1")
    with pytest.raises(InputError, match=r"junk\.nwb: not a readable MATLAB"):
        ingest(junk, tmp_path / "a.zarr", fmt="nermat", areas=["M1"], session="T-1")


def test_session_not_in_sheet():
    sheet = load_sheet(ROOT / "config/sessions.tsv")
    with pytest.raises(InputError, match=r"sessions\.tsv \[session_id\]: session 'Nope-1' is not in the sheet"):
        session_row(sheet, "Nope-1", "config/sessions.tsv")


@pytest.mark.parametrize(
    "patch, field, words",
    [
        ({"preprocessing": {"bin_size_s": "fast"}}, "preprocessing.bin_size_s", "is not of type 'number'"),
        ({"preprocessing": {"window_bins": 2.5}}, "preprocessing.window_bins", "is not of type 'integer'"),
        ({"seeds": "0"}, "seeds", "is not of type 'array'"),
        ({"preprocessing": {"align_event": "reward"}}, "preprocessing.align_event", "is not one of"),
        ({"preprocesing": {}}, "preprocesing", "unknown key 'preprocesing' (known: "),
        ({"simulation": {"params": {"neural": {"dt_s": 0.5}}}}, "simulation.params.neural.dt_s", "maximum of 0.005"),
        (
            {"simulation": {"params": {"neural": {"cis_depth": {"V1": [0, 1]}}}}},
            "simulation.params.neural.cis_depth.V1",
            "unknown key 'V1'",
        ),
    ],
)
def test_wrong_config_types(tmp_path, patch, field, words):
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for key, value in patch.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) and key in cfg else value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(InputError) as err:
        load_config(path)
    assert err.value.source == str(path) and err.value.field == field and words in err.value.problem


def test_defaults_are_filled():
    cfg = validate_config({"sessions": "s.tsv", "data_dir": "d"})
    assert cfg["preprocessing"]["smoothing"] == {"sd_s": 0.045, "half_width_s": 0.12}
    assert cfg["preprocessing"]["bin_size_s"] == 0.03 and cfg["seeds"] == [0]
    assert cfg["simulation"]["enabled"] is False


@pytest.mark.parametrize(
    "column, value, words",
    [
        ("date", "2016-13-45", "not a valid date"),
        ("format", "csv", "is not one of"),
        ("areas", "M1,V1", "does not match"),
        ("hemisphere", "both", "is not one of"),
        ("window_bins", "forty", "is not of type 'integer'"),
    ],
)
def test_bad_sheet_values(tmp_path, column, value, words):
    rows = (ROOT / "config/sessions.tsv").read_text().splitlines()
    header = rows[0].split("\t")
    cells = rows[1].split("\t")
    cells += [""] * (len(header) - len(cells))
    cells[header.index(column)] = value
    sheet = tmp_path / "s.tsv"
    sheet.write_text("\n".join([rows[0], "\t".join(cells)]) + "\n")
    with pytest.raises(InputError) as err:
        load_sheet(sheet)
    assert err.value.source == str(sheet) and err.value.field.endswith(f".{column}") and words in err.value.problem


def test_unknown_sheet_column_and_duplicates(tmp_path):
    text = (ROOT / "config/sessions.tsv").read_text().splitlines()
    sheet = tmp_path / "s.tsv"
    sheet.write_text("\n".join([text[0] + "\tnotes", text[1] + "\tx"]) + "\n")
    with pytest.raises(InputError, match=r"\.notes\]: unknown key 'notes' \(known: align_event, areas, "):
        load_sheet(sheet)
    sheet.write_text("\n".join([text[0], text[1], text[1]]) + "\n")
    with pytest.raises(InputError, match=r"\[session_id\]: duplicate session ids"):
        load_sheet(sheet)


def test_workflow_reports_bad_config_with_file_and_field(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("preprocessing:\n  bin_size_s: fast\n")
    proc = snakemake("-n", "--configfile", cfg, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "bad.yaml" in out and "[preprocessing.bin_size_s]" in out and "is not of type 'number'" in out


def test_failed_ingest_job_leaves_no_output(workflow_copy):
    """A real workflow run on a file without trials fails cleanly: no store, a log that says why."""
    work = workflow_copy
    (work / "data").mkdir()
    write_nwb(work / "data" / "X-1.nwb", trials=False)
    (work / "config" / "s.tsv").write_text(
        "session_id\tsubject\tdate\themisphere\ttask\tformat\tpath\tareas\n"
        "X-1\tX\t2016-10-07\tleft\tcenter_out\tnwb\tX-1.nwb\tM1\n"
    )
    (work / "config" / "config.yaml").write_text("sessions: config/s.tsv\ndata_dir: data\n")
    proc = snakemake("--cores", "1", "--workflow-profile", "none", cwd=work, check=False)
    assert proc.returncode != 0
    assert not (work / "results" / "ingest" / "X-1.zarr").exists()
    assert not list(work.rglob(".X-1.zarr.tmp-*"))
    log = (work / "logs" / "ingest" / "X-1.log").read_text()
    assert "X-1.nwb [intervals/trials]: no trials table" in log
    # what the user sees: the one line from the job, no traceback through the package's frames
    assert "error in rule ingest: " in proc.stderr and "X-1.nwb [intervals/trials]: no trials table" in proc.stderr
    assert "Traceback" not in proc.stderr and "pipeline/" not in proc.stderr.split("error in rule ingest: ")[0][-2000:]
