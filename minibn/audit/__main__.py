"""``python -m minibn.audit [--json PATH] [--markdown PATH] [--only ID ...]``: check every formula of
the documents and print the verdict table."""

from __future__ import annotations

import argparse
import sys
import time

from .. import fileio
from . import REGISTRY, run
from .report import as_json, markdown, markdown_table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minibn.audit", description=__doc__)
    parser.add_argument("--json", metavar="PATH", help="write the entries as a JSON list")
    parser.add_argument("--markdown", metavar="PATH", help="write the table and every entry in full")
    parser.add_argument("--only", nargs="+", metavar="ID", help="check only these formulas")
    args = parser.parse_args(argv)
    known = {f.id for f in REGISTRY}
    unknown = sorted(set(args.only or ()) - known)
    if unknown:
        parser.error(f"unknown formula ids: {', '.join(unknown)}")
    start = time.perf_counter()
    entries = run(args.only)
    print(markdown_table(entries))
    print(f"\n{len(entries)} formulas checked in {time.perf_counter() - start:.1f} s")
    if args.json:
        fileio.save_json(args.json, as_json(entries))
        print(f"JSON: {args.json}")
    if args.markdown:
        fileio.write_atomic(args.markdown, markdown(entries, args.markdown).encode())
        print(f"markdown: {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
