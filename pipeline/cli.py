"""``pipeline`` command line: the package's functions outside Snakemake.

    pipeline provenance results/decoding/within/ner/seed0.scores.tsv
    pipeline provenance --inputs results/figures/m1_simc/matrix_velocity.png   # and every input's, recursively
    pipeline provenance --json results/embeddings/ner/SimC-20161007/M1/seed0.zarr
    pipeline digest results > before.tsv          # sha256 of every table and stored array
    pipeline digest results --compare before.tsv  # after a change: which numbers differ (exit 1 if any)
    pipeline check config/config.yaml my.yaml      # validate configs + sheet; YAML errors with file and line

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


def _check(args: argparse.Namespace) -> int:
    """Read each config (a YAML error names the file, line and column, which Snakemake's own message
    does not), merge them in order, validate the result and the sessions sheet it names."""
    from pipeline.stages.config import load_sheet, read_yaml, validate_config

    merged: dict = {}
    for path in args.configs:
        merged = _merge(merged, read_yaml(path))
    config = validate_config(merged, source=", ".join(args.configs))
    sheet = load_sheet(config["sessions"])
    print(f"ok: {', '.join(args.configs)}; {len(sheet)} session(s) in {config['sessions']}")
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
    chk = sub.add_parser("check", help="validate config files (and the sheet the last one names) as the workflow will")
    chk.add_argument("configs", nargs="+", help="config YAML files, merged in this order (as --configfile)")
    chk.set_defaults(run=_check)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
