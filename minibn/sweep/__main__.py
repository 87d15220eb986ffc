"""python -m minibn.sweep EXPERIMENT --grid FIELD=V1,V2 ... (see minibn.sweep)."""

from __future__ import annotations

import argparse
import sys

from . import SweepError, execute, parse_assignments, plan_sweep
from ..experiment import OutputError, parallel
from ..experiment.protocol import load


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m minibn.sweep", description=sys.modules["minibn.sweep"].__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", help="an experiment of experiments/ (mnist_depth10) or an importable module")
    p.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,...",
                   help="a config field and its values; several --grid make the product")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a config field fixed for every point")
    parallel.add_arguments(p, "points")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="the sweep folder (default runs/sweeps/<experiment>-<hash of the grid>; "
                        "the same command finds the same folder and skips finished points)")
    p.add_argument("--quick", action="store_true", help="every point with the experiment's --quick preset")
    p.add_argument("--retries", type=int, default=2, help="reruns of a point whose process or worker died (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> dict:
    p = build_parser()
    args = p.parse_args(argv)
    where = parallel.from_arguments(p, args)
    if args.retries < 0:
        p.error(f"--retries: must be at least 0, got {args.retries}")
    if not args.grid:
        p.error("--grid: give at least one FIELD=V1,V2,...")
    try:  # everything is checked before any point runs
        exp = load(args.experiment)
        grid = parse_assignments(exp, args.grid, several=True)
        fixed = parse_assignments(exp, args.set, several=False)
        plan = plan_sweep(args.experiment, grid, fixed, out=args.out, quick=args.quick)
    except (SweepError, OutputError, ValueError) as exc:
        p.error(str(exc))
    table = execute(plan, **where, quiet=args.quiet, retries=args.retries)
    print(table["summary"])
    return table


if __name__ == "__main__":
    main()
