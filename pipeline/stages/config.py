"""Configuration and sessions sheet: JSON-schema validation with defaults and one-line errors.

The schemas are package data (``pipeline/stages/schemas/``: an installed wheel validates without the
repository; the workflow validates with them, and so does ``python -m pipeline``). Every error names
the file and the field, e.g. ``config/config.yaml [preprocessing.bin_size_s]: 'abc' is not of type 'number'``.
"""

from __future__ import annotations

import copy
import datetime as dt
from os import PathLike
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from pipeline.errors import InputError, schema_problem
from pipeline.simulate.params import check_beyond_schema, params_schema

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
AREAS = ("M1", "PMd", "S1")
_INT_COLUMNS = ("window_bins", "window_start_bins")


#: libyaml's parser when PyYAML was built with it (the schemas parse 20x faster), else PyYAML's own
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_schema(name: str, schema_dir: Path | None = None) -> dict:
    with open((schema_dir or SCHEMA_DIR) / name) as fh:
        return yaml.load(fh, Loader=YAML_LOADER)  # noqa: S506 (a safe loader)


def config_schema() -> dict:
    """The config's JSON schema (every key, its type, default and description)."""
    return _load_schema("config.schema.yaml")


def fill_defaults(instance: dict, schema: dict) -> dict:
    """Fill ``default`` values of ``schema['properties']`` into ``instance``, recursively, in place.

    Nested objects whose default is ``{}`` are created first and then filled themselves, so a config
    that omits a whole block still gets every leaf default.
    """
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), dict) and sub.get("type") == "object":
            fill_defaults(instance[key], sub)
    return instance


def _first_error(instance, schema: dict, source) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        path, problem = schema_problem(jsonschema.exceptions.best_match(errors))
        raise InputError(source, ".".join(map(str, path)) or None, problem)


def validate_config(config: dict, source: str | PathLike | None = None, schema_dir: Path | None = None) -> dict:
    """Validate ``config`` against ``config.schema.yaml`` and fill defaults (in place).

    Returns:
        the same dict, with defaults filled.

    Raises:
        InputError: naming ``source`` and the dotted path of the first bad key.
    """
    schema = _load_schema("config.schema.yaml", schema_dir)
    simulation = schema["properties"]["simulation"]["properties"]
    simulation["params"] = {**params_schema(), **simulation["params"]}  # its description and default {}
    fill_defaults(config, schema)
    _first_error(config, schema, source)

    def params_error(path, problem):
        return InputError(source, ".".join(["simulation.params", *map(str, path)]), problem)

    # the schema part of simulation.params was checked above (embedded in the config schema)
    check_beyond_schema(config["simulation"]["params"], params_error)
    _check_smoothing(config["preprocessing"]["smoothing"], "preprocessing.smoothing", source)
    _check_smoothing(config["maze"]["preprocessing"]["smoothing"], "maze.preprocessing.smoothing", source)
    return config


def _check_smoothing(smoothing: dict, key: str, source) -> None:
    """A Gaussian cut at less than one sd is not the smoothing the stores would record (``half_width_s: 0``
    with ``sd_s: 0.045`` gave unsmoothed rates under a claimed sd of 45 ms)."""
    sd, half = smoothing.get("sd_s", 0), smoothing.get("half_width_s", 0)
    if sd > 0 and half < sd:
        raise InputError(
            source,
            f"{key}.half_width_s",
            f"{half} is below sd_s {sd}: the kernel would be cut inside one sd (set sd_s: 0 for no smoothing)",
        )


def default_config() -> dict:
    """Every setting at the schema's default (``sessions`` and ``data_dir`` empty): the blocks a notebook
    passes to the stages, e.g. ``default_config()["preprocessing"]``."""
    return validate_config({"sessions": "", "data_dir": ""}, source="default config")


def _yaml_problem(exc: Exception) -> tuple[str | None, str]:
    """(``line N, column M``, what the YAML parser found) of a YAML syntax error."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
    what = " ".join(str(p) for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p)
    return where, f"not valid YAML: {what or exc}"


def read_yaml(path: str | PathLike) -> dict:
    """A YAML config file as a mapping, unvalidated.

    Raises:
        InputError: the file is missing or a directory, is not valid YAML (naming the line and column),
            or is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "is a directory, not a config file" if path.is_dir() else "config file not found")
    with open(path) as fh:
        try:
            config = yaml.load(fh, Loader=YAML_LOADER) or {}  # noqa: S506 (a safe loader)
        except yaml.YAMLError as exc:
            raise InputError(path, *_yaml_problem(exc)) from None
    if not isinstance(config, dict):
        raise InputError(path, None, "the config must be a YAML mapping")
    return config


def load_config(path: str | PathLike) -> dict:
    """Read a YAML config file and validate it (see :func:`read_yaml`, :func:`validate_config`)."""
    return validate_config(read_yaml(path), path)


def _coerce_row(row: dict) -> dict:
    """A sheet row without its empty cells (``""`` as read, NaN in a frame of rows that differ in their
    columns), the integer columns as int where they parse."""
    out = {k: v for k, v in row.items() if not (v is None or v == "" or (isinstance(v, float) and pd.isna(v)))}
    for col in _INT_COLUMNS:
        if col in out:
            try:
                out[col] = int(out[col])
            except ValueError:
                pass  # left as a string: the schema reports the type error with its column
    return out


def _read_tsv(path: Path) -> tuple[list[str], list[dict]]:
    """The header and rows of a tab-separated sheet. Blank lines and lines starting with ``#`` are
    skipped; a ``#`` inside a cell is text. Trailing empty cells (a tab at the end of a line) are
    dropped; a row with more non-empty cells than the header has columns is refused, never shifted.

    Raises:
        InputError: no header, no rows, duplicate column names or a row with too many cells.
    """
    lines = [
        (number, line.rstrip("\r\n"))
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise InputError(path, None, "the sessions sheet is empty (no header, no rows)")
    header = [c.strip() for c in lines[0][1].split("\t")]
    while header and not header[-1]:
        header.pop()
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup or "" in header:
        raise InputError(path, "header", f"duplicate or empty column names {dup or ['']}")
    if len(lines) == 1:
        raise InputError(path, None, "the sessions sheet has a header but no rows")
    records = []
    for number, line in lines[1:]:
        cells = [c.strip() for c in line.split("\t")]
        while len(cells) > len(header) and not cells[-1]:
            cells.pop()
        if len(cells) > len(header):
            raise InputError(
                path,
                f"line {number}",
                f"{len(cells)} cells for the header's {len(header)} columns (a tab inside a value, or a "
                f"missing column name?): {cells[len(header) :]}",
            )
        records.append(dict(zip(header, cells + [""] * (len(header) - len(cells)))))
    return header, records


def load_sheet(path: str | PathLike, schema_dir: Path | None = None) -> pd.DataFrame:
    """Read and validate the sessions sheet (TSV; lines starting with ``#`` are comments).

    Returns:
        one row per session, indexed by ``session_id``, with ``year`` (int) and ``area_list``
        (list of str) derived.

    Raises:
        InputError: naming the sheet, the session and the column of the first problem (unknown
        columns, bad dates, unknown formats or areas, duplicate ids).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            path, None, "is a directory, not a sessions sheet" if path.is_dir() else "sessions sheet not found"
        )
    header, records = _read_tsv(path)
    schema = _load_schema("sessions.schema.yaml", schema_dir)
    rows = []
    for i, raw in enumerate(records):
        row = _coerce_row(raw)
        label = f"row {i + 1} ({row.get('session_id', '?')})"
        try:
            _first_error(row, schema, path)
        except InputError as exc:
            raise InputError(path, f"{label}.{exc.field}", exc.problem) from None
        try:
            date = dt.date.fromisoformat(row["date"])
        except ValueError:
            raise InputError(path, f"{label}.date", f"{row['date']!r} is not a valid date") from None
        row["year"] = date.year
        row["area_list"] = row["areas"].split(",")
        twice = sorted({a for a in row["area_list"] if row["area_list"].count(a) > 1})
        if twice:
            raise InputError(path, f"{label}.areas", f"area(s) {twice} listed twice (every cell would be scored twice)")
        rows.append(row)
    sheet = pd.DataFrame(rows)
    dup = sheet["session_id"][sheet["session_id"].duplicated()]
    if len(dup):
        raise InputError(path, "session_id", f"duplicate session ids {sorted(set(dup))}")
    return sheet.set_index("session_id", drop=False).sort_index()


def session_reader_options(config: dict, row: dict) -> dict:
    """Keyword options of a session's reader (:func:`pipeline.io.read_source`): the declared direction
    unit for every format; for NWB whether behaviour is required; for the paper's files the trial length."""
    options = {"direction_units": config["readers"]["direction_units"]}
    if row["format"] == "nwb":
        options["require_behavior"] = config["readers"]["require_behavior"]
    if row["format"] == "nermat":
        options["trial_bins"] = session_preprocessing(config, row)["window_bins"]
    return options


def session_row(sheet: pd.DataFrame, session_id: str, source: str | PathLike | None = None) -> dict:
    """The sheet row of ``session_id`` as a dict.

    Raises:
        InputError: when the session is not in the sheet (naming the sheet and ``session_id``).
    """
    if session_id not in sheet.index:
        raise InputError(
            source, "session_id", f"session {session_id!r} is not in the sheet (known: {list(sheet.index)})"
        )
    row = {
        k: (v.item() if hasattr(v, "item") and not isinstance(v, (list, str)) else v)
        for k, v in sheet.loc[session_id].to_dict().items()
    }
    return _coerce_row(row)  # drops the NaN of absent optional columns, casts 35.0 -> 35


def session_path(row: dict, data_dir: str | PathLike) -> Path:
    """Absolute-or-relative path of a session's source file (sheet ``path`` joined to ``data_dir``)."""
    path = Path(row["path"])
    return path if path.is_absolute() else Path(data_dir) / path


def session_preprocessing(config: dict, row: dict) -> dict:
    """Preprocessing settings of one session: config defaults with the sheet's per-row overrides."""
    prep = copy.deepcopy(config["preprocessing"])
    for key in ("window_bins", "window_start_bins", "align_event"):
        if key in row:
            prep[key] = row[key]
    return prep


def group_cells(
    sheet: pd.DataFrame, name: str, selectors: dict, source: str | PathLike | None = None, *, required: bool = True
) -> list[tuple[str, str]]:
    """The ``(session, area)`` cells of comparison group ``name``, in matrix order.

    A session belongs to the group when it matches every selector given (``subjects``, ``sessions``,
    ``years``, ``hemispheres``, ``tasks`` (default ``[center_out]``)); its cells are its sheet areas,
    restricted to the group's ``areas`` when given. Order: area (as listed in the group, else M1, PMd,
    S1), then date, then session id, so that a matrix shows each area's sessions chronologically.

    Raises:
        InputError: a listed session is not in the sheet, or the group selects no cell (when
            ``required``; otherwise an empty list: ``--configfile`` merges groups of several configs).
    """
    unknown = sorted(set(selectors.get("sessions") or []) - set(sheet.index))
    if unknown:
        raise InputError(source, f"groups.{name}.sessions", f"not in the sessions sheet: {unknown}")
    columns = {
        "subjects": "subject",
        "sessions": "session_id",
        "years": "year",
        "hemispheres": "hemisphere",
        "tasks": "task",
    }
    selectors = {"tasks": ["center_out"], **selectors}  # decoding across cells needs target directions
    chosen = sheet
    for key, column in columns.items():
        if selectors.get(key) is not None:
            chosen = chosen[chosen[column].isin(selectors[key])]
    areas = selectors.get("areas") or list(AREAS)
    ordered = sorted(chosen.index, key=lambda sid: (chosen.loc[sid, "date"], sid))
    cells = [(sid, area) for area in areas for sid in ordered if area in chosen.loc[sid, "area_list"]]
    if not cells and required:
        raise InputError(source, f"groups.{name}", f"selects no (session, area) cell of the sheet ({selectors})")
    return cells


# --------------------------------------------------------------------------- maze analysis
def maze_sessions(config: dict, sheet: pd.DataFrame, source: str | PathLike | None = None) -> list[str]:
    """Sheet rows of the maze analysis: ``maze.sessions``, or every maze row (none when disabled).

    Raises:
        InputError: a listed session is not in the sheet or is not a maze session.
    """
    block = config["maze"]
    if not block["enabled"]:
        return []
    if block["sessions"] is None:
        return [sid for sid in sheet.index if sheet.loc[sid, "task"] == "maze"]
    for sid in block["sessions"]:
        if sid not in sheet.index:
            raise InputError(source, "maze.sessions", f"session {sid!r} is not in the sessions sheet")
        if sheet.loc[sid, "task"] != "maze":
            raise InputError(source, "maze.sessions", f"session {sid!r} has task {sheet.loc[sid, 'task']!r}, not maze")
    return list(block["sessions"])


def maze_preprocessing(config: dict) -> dict:
    """Preprocessing of the maze stores: ``preprocessing`` with ``maze.preprocessing`` replacing its
    keys (the sheet's per-row window overrides do not apply: the maze window is the paper's)."""
    prep = copy.deepcopy(config["preprocessing"])
    maze = copy.deepcopy(config["maze"]["preprocessing"])
    prep["smoothing"].update(maze.pop("smoothing", {}))
    prep.update(maze)
    return prep


def maze_subset(config: dict, name: str) -> dict:
    """Subset ``name`` of ``maze.subsets`` with its defaults (``versions``) and the split fraction."""
    spec = config["maze"]["subsets"][name]
    return {
        "name": name,
        "trial_types": [int(t) for t in spec["trial_types"]],
        "versions": [int(v) for v in spec.get("versions", [0, 1, 2])],
        "description": spec.get("description", ""),
        "train_fraction": float(config["maze"]["preprocessing"]["train_fraction"]),
    }


def maze_method_params(
    config: dict, method: str, source: str | PathLike | None = None, schema_dir: Path | None = None
) -> dict:
    """Constructor arguments of ``method`` in the maze analysis: ``methods.<method>.params`` with
    ``maze.methods.<method>`` merged over them, validated against that method's params schema.

    Raises:
        InputError: naming ``maze.methods.<method>.<key>`` for an unknown or malformed parameter.
    """
    params = dict(config["methods"][method]["params"], **config["maze"]["methods"][method])
    schema = _load_schema("config.schema.yaml", schema_dir)
    sub = schema["properties"]["methods"]["properties"][method]["properties"]["params"]
    validator = jsonschema.Draft202012Validator(sub)
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        path, problem = schema_problem(jsonschema.exceptions.best_match(errors))
        raise InputError(source, ".".join(map(str, ["maze", "methods", method, *path])), problem)
    return params
