"""The reproduction report: run every registered experiment and gather the claims it checked.

    python experiments/reproduce.py [--quick] [--only NAME ...] [--out DIR] [--quiet]

Each entry of REGISTRY is an experiment of this folder with settings of its own; it runs with
its default settings (or its --quick preset) into DIR/<entry>/, and DIR/REPRODUCTION.md gets
one table of every claim with its verdict (computed by the experiment from what it measured,
by the rule listed under the table), with links to the figures; DIR/claims.json holds the same.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import minibn
from minibn import experiment, fileio
from minibn.experiment import rundir
from minibn.experiment.claims import INCONCLUSIVE, NOT_REPRODUCED, PARTLY, REPRODUCED, VERDICTS, claim, count

# entry -> (experiment, settings it runs with on top of the default or --quick preset)
REGISTRY = {
    "mnist_depth10": ("mnist_depth10", {}),
    "mnist_depth10_l1": ("mnist_depth10", {"norm": "l1"}),
    "mnist_depth10_l3": ("mnist_depth10", {"norm": "l3"}),
    "mnist_depth10_linf": ("mnist_depth10", {"norm": "linf"}),
    "mnist_depth10_l3_uncentered": ("mnist_depth10", {"norm": "l3", "uncentered": True}),
    "mnist_depth10_l1_uncentered": ("mnist_depth10", {"norm": "l1", "uncentered": True}),
    "mnist_depth10_linf_uncentered": ("mnist_depth10", {"norm": "linf", "uncentered": True}),
    "ols_bn": ("ols_bn", {}),
    "noise_robustness": ("noise_robustness", {}),
    "normalizations": ("normalizations", {}),
    "normalizations_shuffle": ("normalizations", {"shuffle": True}),
    "lr_sweep": ("lr_sweep", {}),
    "landscape": ("landscape", {}),
    "smoothness": ("smoothness", {}),
}


def combined_claims(results: dict) -> list:
    """Claims decided from other entries' verdicts: seed 000 sec. 4's "every normalization
    enables higher lr", from the depth-10 runs with each --norm at lr = 1."""
    per_norm = {c["id"].removeprefix("D10-NORM-").lower(): c["verdict"] for m in results.values()
                for c in m.get("claims", []) if c["id"].startswith("D10-NORM-")}
    if not per_norm:
        return []

    def decide(e):
        verdicts = set(e["verdicts"].values())
        if verdicts == {REPRODUCED}:
            return REPRODUCED
        if REPRODUCED in verdicts:
            return PARTLY
        return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE

    return [claim("NORM-HIGHER-LR", "000", "sec. 4", "every normalization, whether L1, L3 or L-infinity, centered "
                  "or not, enables higher lr", "the depth-10 runs of this report, one per --norm (see their rows)",
                  {"verdicts": per_norm}, "from the D10-NORM-* verdicts (each: at lr = 1 the normalized network "
                  "does not diverge where its equivalent plain network does): REPRODUCED if all are REPRODUCED, "
                  "PARTLY if some are, NOT-REPRODUCED if none is and one is NOT-REPRODUCED, INCONCLUSIVE otherwise",
                  decide)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="every experiment with its --quick preset (minutes in all)")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(REGISTRY), default=None,
                   help=f"run only these entries (of {', '.join(REGISTRY)})")
    p.add_argument("--out", metavar="DIR", default=None, help="report folder (default runs/reproduce/<timestamp>)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.out = Path(args.out) if args.out else rundir.default_path("reproduce")
    entries = args.only or list(REGISTRY)
    try:  # every entry's config and folder are checked before anything runs
        rundir.check_output(args.out)
        args.plan = {}
        for name in entries:
            exp = experiment.load(REGISTRY[name][0])
            cfg = exp.config(quick=args.quick, **REGISTRY[name][1], out=str(args.out / name), quiet=args.quiet)
            cfg.check()
            rundir.check_output(cfg.out)
            args.plan[name] = (exp, cfg)
    except (experiment.ConfigError, experiment.OutputError) as exc:
        p.error(str(exc))
    return args


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, {platform.system()} {platform.release()}"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "; ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_report(out: Path, results: dict, argv, seconds: float) -> Path:
    """REPRODUCTION.md and claims.json in ``out`` from {entry: metrics or {"error": ...}}."""
    info = minibn.backend_info()
    claims = [{"entry": name, **c} for name, m in results.items() for c in m.get("claims", [])]
    tally = count(c["verdict"] for c in claims)
    lines = [
        "# Reproduction report",
        "",
        f"Made {datetime.datetime.now().isoformat(timespec='seconds')} with "
        f"`python experiments/reproduce.py{' ' + ' '.join(argv) if argv else ''}` in {seconds:.0f} s on "
        f"{machine()}; Python {info['python']}, minibn {info['minibn']}, NumPy {info['numpy']} ({info['blas']}), "
        f"numba {info['numba']}.",
        "",
        "Each verdict is computed by the experiment from the numbers it measured, by the rule listed "
        "below the table; the evidence column shows those numbers, the setting column what was run (MLPs "
        "on MNIST where the documents used larger networks or data sets).",
        "",
        "Verdicts: " + ", ".join(f"{tally[v]} {v}" for v in VERDICTS) + f" ({len(claims)} claims).",
        "",
        "| entry | seed | section | claim | setting | evidence | verdict | figures |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, metrics in results.items():
        figures = ", ".join(f"[{Path(f).stem}]({Path(f).relative_to(out.resolve()).as_posix()})"
                            for f in metrics.get("files", []) if f.endswith(".png"))
        if "error" in metrics:
            lines.append(f"| {name} | | | | | | FAILED: {_cell(metrics['error'])} | |")
        for i, c in enumerate(metrics.get("claims", [])):  # the run's figures on its first row
            lines.append("| " + " | ".join(_cell(v) for v in (
                name, c["seed"], c["section"], c["claim"], c["setting"], _fmt(c["evidence"]),
                f"**{c['verdict']}**", figures if i == 0 else "")) + " |")
    lines += ["", "## Rules", ""]
    lines += [f"- **{c['id']}** ({c['entry']}): {c['rule']}" for c in claims]
    failed = {n: m for n, m in results.items() if "error" in m}
    if failed:
        lines += ["", "## Failures", ""]
        for name, m in failed.items():
            lines += [f"### {name}", "", "```", m["traceback"].rstrip(), "```", ""]
    path = out / "REPRODUCTION.md"
    fileio.write_atomic(path, ("\n".join(lines) + "\n").encode())
    fileio.save_json(out / "claims.json", {"claims": claims, "failed": {n: m["error"] for n, m in failed.items()}})
    return path


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve()
    started = time.perf_counter()
    results = {}
    for name, (exp, cfg) in args.plan.items():
        cfg.out = str(out / name)
        try:
            results[name] = exp.run(cfg)
        except Exception as exc:  # one experiment's failure is reported; the others still run
            results[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            print(f"{name} failed: {results[name]['error']}", file=sys.stderr)
    combined = combined_claims(results)
    if combined:
        results["combined"] = {"claims": combined}
    path = write_report(out, results, argv, time.perf_counter() - started)
    print(f"wrote {path}\nwrote {out / 'claims.json'}")
    if any("error" in m for m in results.values()):
        sys.exit(1)
    return results


if __name__ == "__main__":
    main()
