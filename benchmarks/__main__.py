"""``python -m benchmarks [--quick] [--only store logtail ...]``: run, print the table, write results."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from .common import Row, write_results

MODULES = ["store", "logtail", "cli"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("--only", nargs="+", choices=MODULES, help="run only these benchmarks")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    failed = []
    for name in args.only or MODULES:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(importlib.import_module(f"benchmarks.bench_{name}").run(args.quick))
        except Exception:
            traceback.print_exc()
            failed.append(name)
    print(write_results(rows, args.quick))
    if failed:
        print(f"benchmarks that crashed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
