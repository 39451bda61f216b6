"""``python -m benchmarks [--quick] [--only polling clients ...]``: run, print the table, write results."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from .common import Row, write_results

#: In the issue's order: 1. calls per poll, 2. clients side by side, 3. in-kernel refresh, 4. log
#: tail, 5. store, 6. CLI, 7. browser; then 8. scale (100,000 and 1,000,000 jobs: list, backups);
#: 9. the JobAPI server (50 log followers); 10. calls per poll on Grid Engine.
MODULES = ["polling", "clients", "refresh", "logtail", "store", "cli", "browser", "scale", "server", "sge"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("--only", nargs="+", choices=MODULES, help="run only these benchmarks")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    failed = []
    started = time.monotonic()
    for name in args.only or MODULES:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        begun = time.monotonic()
        try:
            rows.extend(importlib.import_module(f"benchmarks.bench_{name}").run(args.quick))
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"  {name}: {time.monotonic() - begun:.0f} s", file=sys.stderr, flush=True)
    print(write_results(rows, args.quick, partial=bool(args.only)))
    print(f"benchmarks took {time.monotonic() - started:.0f} s", file=sys.stderr)
    if failed:
        print(f"benchmarks that crashed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
