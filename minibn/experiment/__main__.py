"""python -m minibn.experiment rejudge RUN_DIR [RUN_DIR ...] [--experiment NAME] [--no-figures]"""

from __future__ import annotations

import argparse
import sys

from .rejudge import RejudgeError, rejudge, verdict_lines
from .rejudge import __doc__ as REJUDGE


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m minibn.experiment",
                                description="Tools for finished experiment runs.")
    commands = p.add_subparsers(dest="command", required=True)
    r = commands.add_parser("rejudge", help="decide a run's claims again (and draw its figures) from its "
                                            "metrics.json alone, by the experiment's current rules",
                            description=REJUDGE,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("folders", nargs="+", metavar="RUN_DIR", help="a run's folder (it holds metrics.json)")
    r.add_argument("--experiment", default=None, metavar="NAME",
                   help="the experiment (a registered name or a module path; default: the one metrics.json names)")
    r.add_argument("--no-figures", action="store_true", help="decide the claims only; leave the figures as they are")
    args = p.parse_args(argv)
    failed = False
    for folder in args.folders:
        try:
            metrics = rejudge(folder, args.experiment, figures=not args.no_figures)
        except RejudgeError as exc:
            print(f"rejudge: {exc}", file=sys.stderr)
            failed = True
            continue
        print(f"{folder}:")
        print("\n".join(verdict_lines(metrics)))
        print("\n".join(f"wrote {f}" for f in metrics["files"]))
        for name, error in metrics["figure_errors"].items():
            print(f"FAILED figure {name}: {error}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
