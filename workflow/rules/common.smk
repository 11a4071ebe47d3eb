# Shared helpers: config + sheet validation (defaults filled), what the run computes (PLAN, from
# pipeline.stages.plan: the cells, groups, maze plan and targets; PATHS: every result path), wildcard
# constraints and per-stage code fingerprints. Nothing here computes data.
import re
from pathlib import Path

from pipeline.stages.config import (
    load_sheet,
    maze_preprocessing,
    maze_subset,
    session_path,
    session_preprocessing,
    session_reader_options,
    session_row,
    validate_config,
)
from pipeline.errors import InputError
from pipeline.embed.methods import GPU_METHODS, METHODS
from pipeline.stages.plan import PATHS, Plan, draws_alignment_curve
from pipeline.stages.provenance import code_fingerprint

validate_config(config, source=", ".join(map(str, workflow.configfiles)) or "config")
SHEET = load_sheet(config["sessions"])
PLAN = Plan(config, SHEET)
DATA_DIR = config["data_dir"].rstrip("/")
SIMULATED = config["simulation"]["enabled"]

if SIMULATED:
    for _sid, _row in SHEET.iterrows():
        if _row["format"] != "nwb" or _row["path"] != f"{_sid}.nwb":
            raise InputError(
                config["sessions"],
                f"{_sid}.path",
                f"simulated sessions must have format nwb and path {_sid}.nwb",
            )


wildcard_constraints:
    session="|".join(re.escape(s) for s in PLAN.sessions),
    method="|".join(re.escape(m) for m in config["methods"]),
    area="M1|PMd|S1",
    seed=r"\d+",
    group="|".join(re.escape(g) for g in config["groups"]) or "(?!)",
    subset="|".join(re.escape(s) for s in config["maze"]["subsets"]) or "(?!)",


# Code fingerprints (params: code). Each is derived from the imports of the rule's script: every
# package module it reaches (pipeline.stages.provenance.import_closure), so that editing a module reruns
# exactly the jobs whose code imports it. Training adds the module of its {method} (the method
# registry imports it by name at run time).
# (this file's folder, not workflow.basedir: imported as a module, basedir is the importing workflow's)
_SCRIPTS = Path(workflow.current_basedir).parent / "scripts"
_FINGERPRINTS = {}


def fingerprint(script, *modules):
    """Fingerprint of the package code workflow/scripts/{script}.py imports, plus ``modules``."""
    key = (script, *modules)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = code_fingerprint([_SCRIPTS / f"{script}.py", *modules])
    return _FINGERPRINTS[key]


def train_fingerprint(wildcards):
    """Fingerprint of the training script's code plus the module of {method}."""
    return fingerprint("train", METHODS[wildcards.method].split(":")[0])


def method_gpus(wildcards):
    """1 for methods that train on a GPU (gpu-tagged jobs), 0 for the CPU-only ones."""
    return int(wildcards.method in GPU_METHODS)


def row(wildcards):
    """The sessions-sheet row of {session}, as plain JSON-serialisable values."""
    return session_row(SHEET, wildcards.session, config["sessions"])


def source_file(wildcards):
    """The recording file of {session} (sheet `path` under config `data_dir`).

    Flagged ``local``: the lab's recordings stay where config `data_dir` says (relative to the working
    directory) when this workflow is imported as a module with a ``prefix:``, which moves only its results.
    """
    return local(str(session_path(row(wildcards), DATA_DIR)))


def preprocessing(wildcards):
    """The preprocessing block with the session's sheet overrides applied."""
    return session_preprocessing(config, row(wildcards))


def reader_options(wildcards):
    """Keyword options of the session's reader."""
    return session_reader_options(config, row(wildcards))


def flat(pairs):
    """The files of (embedding, prepared) pairs, for `input:` (the pairs go to `params: cells`)."""
    return [f for pair in pairs for f in pair]


def group_pair_files(wildcards):
    """Every (embedding, prepared) file of {group}'s cells, all methods and seeds."""
    return [
        f
        for pairs in PLAN.group_cells_pairs(wildcards.group).values()
        for f in flat(pairs)
    ]
