"""``pipeline`` command line: the package's functions outside Snakemake.

    pipeline provenance results/decoding/within/ner/seed0.scores.tsv
    pipeline provenance --inputs results/figures/m1_simc/matrix_velocity.png   # and every input's, recursively
    pipeline provenance --json results/embeddings/ner/SimC-20161007/M1/seed0.zarr
    pipeline digest results > before.tsv          # sha256 of every table and stored array
    pipeline digest results --compare before.tsv  # after a change: which numbers differ (exit 1 if any)
    pipeline validate config/config.yaml my.yaml   # configs + sheet + recordings, as the workflow checks them
    pipeline inspect results/prepared/SimC-20161007.zarr   # dims, coordinates, variables, attributes, provenance
    pipeline methods [ner]                          # the method registry: parameters, defaults, what each means
    pipeline simulate SimX-20161007.nwb --areas M1 PMd     # one built-in recording, outside the workflow

Paths inside records are relative to the workflow's working directory; run the command from there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.data.origin import result_digests, sha256_file
from pipeline.errors import InputError
from pipeline.stages.provenance import read_provenance

_KEY_VERSIONS = ("python", "ner-pipeline", "torch", "numpy", "scikit-learn", "xarray", "zarr", "cebra")


def format_record(path: str, record: dict) -> str:
    """A few aligned lines: what made ``path``, with which config, seed, device, code and versions."""
    if record.get("source"):
        return f"{path}\n  source    no job made it (sha256 {record.get('sha256')})"
    wildcards = ", ".join(f"{k}={v}" for k, v in record.get("wildcards", {}).items())
    device = record.get("device") or {}
    versions = record.get("versions") or {}
    lines = [
        path,
        f"  rule      {record.get('rule')}" + (f" ({wildcards})" if wildcards else ""),
        f"  seed      {record.get('seed')}",
        f"  device    {device.get('device')}" + (f" ({device['reason']})" if device.get("reason") else ""),
        f"  code      {record.get('code_fingerprint')}",
        "  versions  " + ", ".join(f"{k} {versions[k]}" for k in _KEY_VERSIONS if k in versions),
        "  config    " + json.dumps(record.get("config", {}), sort_keys=True),
        f"  inputs    {len(record.get('inputs', []))}",
    ]
    return "\n".join(lines)


def _validate(args: argparse.Namespace) -> int:
    """Read each config (a YAML error names the file, line and column, which Snakemake's own message
    does not), merge them in order (as ``--configfile``), validate the result, the sessions sheet it names
    and the plan (groups, maze subsets) with the workflow's own functions, and, unless the recordings are
    simulated, that every recording the sheet names exists under ``data_dir``."""
    from pipeline.stages.config import load_sheet, read_yaml, session_path, validate_config
    from pipeline.stages.plan import Plan

    merged: dict = {}
    for path in args.configs:
        merged = _merge(merged, read_yaml(path))
    config = validate_config(merged, source=", ".join(args.configs))
    sheet = load_sheet(config["sessions"])
    plan = Plan(config, sheet)
    if not config["simulation"]["enabled"]:
        for sid, row in sheet.iterrows():
            source = session_path(row, config["data_dir"])
            if not Path(source).is_file():
                raise InputError(
                    config["sessions"], f"{sid}.path", f"no recording at {source} (config data_dir + path)"
                )
    groups = ", ".join(f"{g} ({len(cells)} cells)" for g, cells in plan.groups.items()) or "none"
    print(f"ok: {', '.join(args.configs)}")
    print(
        f"  sessions  {len(sheet)} in {config['sessions']}"
        + (" (simulated)" if config["simulation"]["enabled"] else "")
    )
    print(f"  methods   {', '.join(plan.methods)}; seeds {plan.seeds}")
    print(f"  groups    {groups}")
    if plan.maze_sessions:
        print(f"  maze      {len(plan.maze_sessions)} session(s) x subsets {', '.join(plan.maze_subsets)}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    """Dimensions, coordinates, variables and attributes of a store, and who made it."""
    from pipeline.data.store import open_store

    ds = open_store(args.store)
    print(f"{args.store}  (layout {ds.attrs.get('layout', '?')})")
    print("  dims      " + ", ".join(f"{d}={n}" for d, n in ds.sizes.items()))
    print("  coords")
    for name, var in ds.coords.items():
        print(f"    {name:<26} {_describe_var(var)}")
    print("  variables")
    for name, var in ds.data_vars.items():
        print(f"    {name:<26} {_describe_var(var)}")
    attrs = {k: v for k, v in ds.attrs.items() if k != "provenance"}
    if attrs:
        print("  attrs")
        for key, value in attrs.items():
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
            print(f"    {key:<26} {text if len(text) <= 100 else text[:97] + '...'}")
    try:
        record = read_provenance(args.store)
    except InputError:
        record = None
    if record:
        device = (record.get("device") or {}).get("device")
        print(
            f"  made by   rule {record.get('rule')}, seed {record.get('seed')}, device {device}, "
            f"code {str(record.get('code_fingerprint'))[:12]} (`pipeline provenance {args.store}` for all of it)"
        )
    else:
        print("  made by   (no provenance record: not written by a workflow job)")
    return 0


def _describe_var(var) -> str:
    """``(dims) dtype`` plus, for small 1-D coordinates, the first and last value."""
    text = f"({', '.join(var.dims)}) {var.dtype}"
    if var.ndim == 1 and var.size:
        first, last = var.values[0], var.values[-1]
        text += f"  [{first} ... {last}]" if var.size > 1 else f"  [{first}]"
    return text


def _methods(args: argparse.Namespace) -> int:
    """The method registry with each method's parameters, defaults and descriptions (the config schema's,
    which are the constructors' arguments: ``methods.<name>.params`` in a config)."""
    from pipeline.embed.methods import GPU_METHODS, METHODS
    from pipeline.stages.config import config_schema

    blocks = config_schema()["properties"]["methods"]["properties"]
    names = [args.name] if args.name else list(METHODS)
    if args.name and args.name not in METHODS:
        raise InputError("pipeline methods", "NAME", f"unknown method {args.name!r}; registered: {', '.join(METHODS)}")
    for name in names:
        block = blocks[name]
        target = METHODS[name].replace(":", ".")
        where = "GPU when leased, else CPU" if name in GPU_METHODS else "CPU"
        print(f"{name}  ({target}; trains on {where})")
        params = block.get("properties", {}).get("params", {}).get("properties", {})
        for key, spec in params.items():
            default = json.dumps(spec.get("default"))
            line = f"    {key:<22} {default:<14}"
            if args.name and spec.get("description"):
                line += f" {spec['description']}"
            print(line.rstrip())
        if not params:
            print("    (no parameters)")
    if not args.name:
        print("\n`pipeline methods NAME` adds each parameter's description; defaults are the paper's settings.")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    """One built-in recording (the demo's simulator) as a real NWB file, plus its ground truth."""
    from pipeline.simulate import simulate_session

    out = Path(args.out)
    if out.suffix != ".nwb":
        raise InputError(out, None, "the output must end in .nwb")
    truth = out.with_name(out.stem + "_truth.npz")
    params = {args.task: {"n_trials": args.trials}} if args.trials else None
    simulate_session(
        out,
        truth,
        session_id=args.session_id or out.stem,
        subject=args.subject,
        date=args.date,
        hemisphere=args.hemisphere,
        task=args.task,
        areas=args.areas,
        seed=args.seed,
        params=params,
    )
    print(f"wrote {out} and {truth}")
    return 0


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _provenance(args: argparse.Namespace) -> int:
    todo, seen, out = [args.path], set(), []
    while todo:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.add(path)
        try:
            record = read_provenance(path)
        except InputError:
            if path == args.path:
                raise
            # an input that no job made: the recording itself (or a file from outside the workflow)
            record = {"source": True, "sha256": sha256_file(path) if Path(path).is_file() else None}
        out.append((path, record))
        if args.inputs:
            todo.extend(p for p in record.get("inputs", []) if Path(p).exists())
    if args.json:
        print(json.dumps({p: r for p, r in out} if args.inputs else out[0][1], indent=1, sort_keys=True))
    else:
        print("\n\n".join(format_record(p, r) for p, r in out))
    return 0


def _digest(args: argparse.Namespace) -> int:
    if not Path(args.results).is_dir():
        raise InputError(args.results, None, "not a folder (the workflow's results/)")
    digests = result_digests(args.results)
    if not args.compare:
        print("\n".join(f"{path}\t{sha}" for path, sha in digests.items()))
        return 0
    if not Path(args.compare).is_file():
        raise InputError(args.compare, None, "no such file (an earlier `pipeline digest` listing)")
    before = {}
    for number, line in enumerate(Path(args.compare).read_text().splitlines(), 1):
        path, sep, sha = line.partition("\t")
        if not sep:
            raise InputError(args.compare, f"line {number}", "expected '<path><TAB><sha256>'")
        before[path] = sha
    changes = [f"changed  {p}" for p in sorted(set(before) & set(digests)) if before[p] != digests[p]]
    changes += [f"missing  {p}" for p in sorted(set(before) - set(digests))]
    changes += [f"new      {p}" for p in sorted(set(digests) - set(before))]
    print("\n".join(changes) if changes else f"identical: {len(digests)} tables and arrays")
    return 1 if changes else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pipeline`` console script (also ``python -m pipeline``)."""
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prov = sub.add_parser("provenance", help="print the provenance record of a result file or store")
    prov.add_argument("path", help="a store (.zarr), model folder, table, figure or *.provenance.json")
    prov.add_argument("--inputs", action="store_true", help="also print the records of its inputs, recursively")
    prov.add_argument("--json", action="store_true", help="print the record(s) as JSON")
    prov.set_defaults(run=_provenance)
    dig = sub.add_parser("digest", help="sha256 of every table and stored array under a results folder")
    dig.add_argument("results", help="the workflow's results/ folder")
    dig.add_argument("--compare", metavar="FILE", help="an earlier `pipeline digest` listing: print what differs")
    dig.set_defaults(run=_digest)
    val = sub.add_parser(
        "validate",
        aliases=["check"],
        help="validate config files, the sessions sheet and the recordings as the workflow will",
    )
    val.add_argument("configs", nargs="+", help="config YAML files, merged in this order (as --configfile)")
    val.set_defaults(run=_validate)
    ins = sub.add_parser("inspect", help="dimensions, coordinates, variables, attributes and provenance of a store")
    ins.add_argument("store", help="a .zarr store the workflow wrote (ingest, prepared, embedding)")
    ins.set_defaults(run=_inspect)
    met = sub.add_parser("methods", help="the embedding methods with their parameters and defaults")
    met.add_argument("name", nargs="?", help="one method: also print what each parameter means")
    met.set_defaults(run=_methods)
    sim = sub.add_parser("simulate", help="write one built-in simulated recording as an NWB file")
    sim.add_argument("out", help="the NWB file to write (its ground truth goes beside it, *_truth.npz)")
    sim.add_argument("--task", choices=["center_out", "maze"], default="center_out")
    sim.add_argument("--areas", nargs="+", default=["M1", "PMd"], choices=["M1", "PMd", "S1"])
    sim.add_argument("--subject", default="SimX")
    sim.add_argument("--date", default="2016-10-07", help="YYYY-MM-DD (the year picks the tuning)")
    sim.add_argument("--hemisphere", choices=["left", "right"], default="left")
    sim.add_argument("--session-id", help="default: the file's name without .nwb")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--trials", type=int, help="number of trials (default: the simulator's)")
    sim.set_defaults(run=_simulate)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
