"""How the reproduction report's time falls with workers: the same sub-report run with 1 and with N
workers (local processes, or a local Dask cluster), each into a fresh folder, timed as a whole.

    python bench/scaling.py [--workers 1 2] [--dask] [--protocol quick] [--only ENTRY ...]

The default sub-report is the quick protocol's grid experiments (their units are independent tasks)
and the depth-10 runs: enough tasks to keep two workers busy. Prints the wall time of each and the
speed-up over one worker; the verdicts of every run must be the same (a task computes with one BLAS
thread wherever it runs), else it says so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = ["noise_robustness", "landscape", "smoothness", "gradient_scale", "normalizations", "mnist_depth10",
           "mnist_depth10_l1", "mnist_depth10_l3", "mnist_depth10_linf"]


def report(protocol: str, only: list, where: list, out: Path) -> tuple:
    """Run the sub-report; its wall time in seconds and its verdicts."""
    command = [sys.executable, str(ROOT / "experiments" / "reproduce.py"), "--protocol", protocol, "--only", *only,
               "--out", str(out), "--quiet", *where]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    claims = json.loads((out / "claims.json").read_text())["claims"]
    return seconds, [(c["entry"], c["id"], c["verdict"]) for c in claims]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--dask", action="store_true", help="a local Dask cluster of that many workers each time")
    p.add_argument("--protocol", default="quick", choices=("quick", "default", "author"))
    p.add_argument("--only", nargs="+", default=ENTRIES)
    args = p.parse_args(argv)
    times, verdicts = {}, {}
    with tempfile.TemporaryDirectory(prefix="minibn-scaling-") as folder:
        for n in args.workers:
            where = ["--dask", f"local:{n}"] if args.dask else ["--workers", str(n)]
            times[n], verdicts[n] = report(args.protocol, args.only, where, Path(folder) / f"workers={n}")
            print(f"{' '.join(where)}: {times[n]:.0f} s", flush=True)
    first = args.workers[0]
    executor = "a local Dask cluster" if args.dask else "local processes"
    print(f"\n{args.protocol} protocol, entries {', '.join(args.only)}, on {executor}:")
    for n in args.workers:
        print(f"  {n} worker(s): {times[n]:.0f} s, a speed-up of {times[first] / times[n]:.2f}x over {first}")
    same = all(v == verdicts[first] for v in verdicts.values())
    print("  the same verdicts in every run" if same else "  THE VERDICTS DIFFER between the runs")


if __name__ == "__main__":
    main()
