"""The reproduction report: run every registered experiment and gather the claims it checked.

    python experiments/reproduce.py [--protocol quick|default|author] [--only NAME ...] [--out DIR]
        [--workers N | --dask local:N | --scheduler ADDR] [--docs DOCS] [--quiet]
    python experiments/reproduce.py --rejudge DIR [--docs DOCS]

Each entry of REGISTRY is an experiment with settings of its own; it runs with the preset of
--protocol (default: the experiments' defaults; quick, or --quick: their quick presets, minutes in
all; author: their AUTHOR presets, the seed author's whole protocol where the author's code gives
one, with the AUTHOR_ENTRIES beside them and the one-seed experiments of AUTHOR_SEEDS run once
per seed) and its own settings over it into DIR/<entry>/, and DIR/REPRODUCTION.md gets one table
of every claim with its verdict (computed by the experiment from what it measured, by the rule
listed under the table), with links to the figures; DIR/claims.json holds the same.

The entries run as one graph of tasks (minibn.sweep.entries): every job of an experiment's grid
(a (variant, seed) unit, or a variant's seeds side by side) is a task, and so is every run of an
experiment measured in one function; they spread over --workers N local processes (default: one
per core; 0: this process), a local Dask cluster (--dask local:N) or an existing one (--scheduler
ADDR); the claims combining several entries are decided once those entries are in.

The same command again into the same --out continues the report: finished jobs are kept, runs
cut short resume from their checkpoints, finished runs only decide their claims and draw their
figures again (settings that contradict a run are refused before anything runs), so a kill
loses at most the tasks in flight; DIR/sittings.json keeps each command's time, so the header states
the report's whole time over all of them. ``--only NAME ... --out DIR`` into a report runs those
entries and keeps the others (their claims decided again from their metrics.json, as by
``--rejudge``); the report's header names every command.

``--rejudge DIR`` decides the claims of a finished report again from its runs' metrics.json (no
training) and rewrites its REPRODUCTION.md; ``--docs DOCS`` writes one Markdown page per
experiment, with its numbers, claims and figures, from the report's runs (docs/results).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import minibn
from minibn import experiment, fileio
from minibn.experiment import checkpoint, pages, parallel, rundir, stats
from minibn.experiment.claims import (INCONCLUSIVE, NOT_REPRODUCED, PARTLY, REPRODUCED, REPLICATION_RULE, VERDICTS,
                                      claim, count, margin, replicated)
from minibn.experiment.protocol import PROTOCOLS
from minibn.sweep import entries as graph

# entry -> (experiment, settings it runs with on top of the default or --quick preset); an
# experiment's first entry is its main run (its page shows that run's figures first)
REGISTRY = {
    "mnist_depth10": ("mnist_depth10", {}),
    "mnist_depth10_l1": ("mnist_depth10", {"norm": "l1"}),
    "mnist_depth10_l3": ("mnist_depth10", {"norm": "l3"}),
    "mnist_depth10_linf": ("mnist_depth10", {"norm": "linf"}),
    "mnist_depth10_l3_uncentered": ("mnist_depth10", {"norm": "l3", "uncentered": True}),
    "mnist_depth10_l1_uncentered": ("mnist_depth10", {"norm": "l1", "uncentered": True}),
    "mnist_depth10_linf_uncentered": ("mnist_depth10", {"norm": "linf", "uncentered": True}),
    "mnist_depth10_l2_uncentered": ("mnist_depth10", {"norm": "l2", "uncentered": True}),
    "ols_bn": ("ols_bn", {}),
    "noise_robustness": ("noise_robustness", {}),
    "normalizations": ("normalizations", {}),
    "normalizations_shuffle": ("normalizations", {"shuffle": True}),
    "lr_sweep": ("lr_sweep", {}),
    "landscape": ("landscape", {}),
    "smoothness": ("smoothness", {}),
    "gradient_scale": ("gradient_scale", {}),
    "mnist_depth10_after_relu": ("mnist_depth10", {"norm_after_activation": True}),
    "smoothness_after_relu": ("smoothness", {"norm_after_activation": True, "dln": False, "lp_norms": None}),
}
# entries the author protocol adds: the depth-10 network also in the setting of the author's code
AUTHOR_ENTRIES = {
    "mnist_depth10_author_code": ("mnist_depth10", {"batch_size": 64, "shuffle": False, "fold_on": "first-batch",
                                                    "steps": 157}),
}


# settings the author protocol changes in its entries: the batch order that is not the author's keeps its
# spectra for the end of training (the author's protocol, spectra along training on every seed, is the main entry's)
AUTHOR_SETTINGS = {"normalizations_shuffle": {"hessian_seeds": 0}}
# experiments measured one seed per run that the author protocol runs once per seed (5 seeds everywhere)
AUTHOR_SEEDS = {"mnist_depth10": 5}


def entries(protocol: str = "author") -> dict:
    """The entries a report runs under ``protocol`` (all that a report may hold, by default), each
    (experiment, its settings over the protocol's preset)."""
    if protocol != "author":
        return dict(REGISTRY)
    return {name: (spec, {**settings, **AUTHOR_SETTINGS.get(name, {})})
            for name, (spec, settings) in {**REGISTRY, **AUTHOR_ENTRIES}.items()}


def seeds_of(spec: str, protocol: str) -> int:
    """The runs, one per seed, of an entry of experiment ``spec`` under ``protocol``."""
    return AUTHOR_SEEDS.get(spec, 1) if protocol == "author" else 1


# the entries run again with the normalization after the ReLU: {entry: its after-ReLU entry}
AFTER_RELU = {"mnist_depth10": "mnist_depth10_after_relu", "smoothness": "smoothness_after_relu"}
PERFORMANCE = "smoothness"  # the entry whose BN networks' accuracies, seed by seed, compare the two orders
ORDER_MARGIN = 0.01  # "affects model performance": accuracy apart by a point or more
COMBINED = "combined"  # the entry of the claims decided from other entries' verdicts
REPORT = "REPRODUCTION.md"
CLAIMS = "claims.json"
SITTINGS = "sittings.json"


def combined_claims(results: dict) -> list:
    """Claims decided from other entries: seed 000 sec. 4's "every normalization enables higher lr",
    from the depth-10 runs with each --norm at lr = 1, and seed 004's question of batch norm before
    or after the activation, from the entries run both ways."""
    return [c for c in (higher_lr(results), bn_order(results)) if c]


def higher_lr(results: dict):
    per_norm = {c["id"].removeprefix("D10-NORM-").lower(): c["verdict"] for m in results.values()
                for c in m.get("claims", []) if c["id"].startswith("D10-NORM-")}
    if not per_norm:
        return None
    return claim("NORM-HIGHER-LR", "000", "sec. 4", "every normalization, whether L1, L3 or L-infinity, centered "
                  "or not, enables higher lr", "the depth-10 runs of this report, one per --norm (see their rows)",
                  {"verdicts": per_norm}, "from the D10-NORM-* verdicts, one run per normalization (each: at lr = 1 "
                  f"the normalized network does not diverge where its equivalent plain network does): {REPLICATION_RULE}",
                  decide_higher_lr, test="the entries' verdicts")


def decide_higher_lr(e) -> str:
    return replicated(e["verdicts"].values())


def bn_order(results: dict):
    pairs = {b: a for b, a in AFTER_RELU.items() if "claims" in results.get(b, {}) and "claims" in results.get(a, {})}
    if not pairs:
        return None
    verdicts, survived, changed = {}, [], []
    for before, after in pairs.items():
        moved = {c["id"]: c["verdict"] for c in results[after]["claims"]}
        for c in results[before]["claims"]:
            if c["id"] in moved:
                key, pair = f"{before}/{c['id']}", (c["verdict"], moved[c["id"]])
                verdicts[key] = list(pair)
                if pair[0] == pair[1]:
                    survived.append(key)
                elif INCONCLUSIVE not in pair:
                    changed.append(key)
    e = {"verdicts_before_after": verdicts, "survived": survived, "changed": changed,
         "undecided": [k for k in verdicts if k not in survived and k not in changed]}
    if PERFORMANCE in pairs:
        accuracy = {which: {k: results[entry]["summary"]["bn"][k] for k in ("final_train", "final_test")}
                    for which, entry in (("before", PERFORMANCE), ("after", pairs[PERFORMANCE]))}
        tests = {k: {"difference": stats.paired_t_test(accuracy["after"][k], accuracy["before"][k]),
                     "equivalence": stats.equivalence_test(accuracy["after"][k], accuracy["before"][k],
                                                           margin=ORDER_MARGIN)} for k in ("final_train", "final_test")}
        adjusted = stats.holm([t["difference"][1] for t in tests.values()])
        for t, q in zip(tests.values(), adjusted):
            t["p_holm"] = q
        e.update(accuracy=accuracy, tests=tests)
    return claim("BN-ORDER", "004", "Reflection", "[using BN layers before or after activation functions] was likely "
                 "to affect the optimisation problem, and hence model performance, but we were unable as a group to "
                 "determine how this might affect the results of the paper",
                 f"the entries {', '.join(f'{b} and {a}' for b, a in pairs.items())}: the same runs with each "
                 "normalization after its ReLU (Linear -> ReLU -> BN) instead of before it", e,
                 f"the optimisation and the performance: the BN network's final training and test accuracy in "
                 f"{PERFORMANCE}, per seed (the same initial weights and batches in both orders), after against "
                 f"before: REPRODUCED if both differ (paired t-test, Holm over the two, p < 0.05); PARTLY if one "
                 f"does; NOT-REPRODUCED if both are equal within {100 * ORDER_MARGIN:g} point(s) (TOST, alpha 0.05 "
                 "each: a smaller change is no effect on performance); INCONCLUSIVE otherwise or without that entry "
                 "in both orders. The results: every claim of the entries run both ways, with its verdict before and "
                 "after; 'survived' keeps its verdict, 'changed' has two different decisive verdicts (a changed "
                 "conclusion, not a test of the difference), 'undecided' INCONCLUSIVE in one order",
                 decide_order, test="paired t-tests with Holm's correction; TOST (equivalence)",
                 margin=margin(ORDER_MARGIN, "accuracy"))


def decide_order(e) -> str:
    if "tests" not in e:
        return INCONCLUSIVE
    shown = sum(t["p_holm"] < 0.05 for t in e["tests"].values())
    if shown == len(e["tests"]):
        return REPRODUCED
    if shown:
        return PARTLY
    if all(t["equivalence"]["equivalent"] for t in e["tests"].values()):
        return NOT_REPRODUCED
    return INCONCLUSIVE


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="every experiment with its --quick preset (minutes in all; "
                                                        "the same as --protocol quick)")
    p.add_argument("--protocol", choices=PROTOCOLS, default=None,
                   help="the experiments' presets: quick, default (the default) or author (the seed author's "
                        "whole protocol, with " + ", ".join(AUTHOR_ENTRIES) + ")")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(entries()), default=None,
                   help=f"run only these entries, their tasks started in this order (of {', '.join(entries())})")
    p.add_argument("--out", metavar="DIR", default=None, help="report folder (default runs/reproduce/<timestamp>)")
    p.add_argument("--rejudge", metavar="DIR", default=None,
                   help="decide the claims of the report in DIR again from its runs (no training) and rewrite it")
    p.add_argument("--docs", metavar="DOCS", default=None,
                   help="also write a page per experiment from the report's runs into DOCS (e.g. docs/results)")
    parallel.add_arguments(p, "tasks")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    args.where = parallel.from_arguments(p, args)
    if args.quick and args.protocol not in (None, "quick"):
        p.error(f"--quick: not with --protocol {args.protocol} (--quick is --protocol quick)")
    args.protocol = "quick" if args.quick else args.protocol or "default"
    if args.rejudge:
        for name, given in (("--quick", args.quick), ("--protocol", args.protocol != "default"), ("--only", args.only),
                            ("--out", args.out), ("--workers", args.workers is not None), ("--dask", args.dask),
                            ("--scheduler", args.scheduler)):
            if given:
                p.error(f"{name}: not with --rejudge (the report keeps the runs it has)")
        args.out = Path(args.rejudge)
        if not (args.out / CLAIMS).is_file():
            p.error(f"--rejudge: {args.out} holds no reproduction report ({CLAIMS} is missing)")
        args.plan = {}
        return args
    args.out = Path(args.out) if args.out else rundir.default_path("reproduce")
    try:  # every entry's config and folder are checked before anything runs
        rundir.check_output(args.out)
    except experiment.OutputError as exc:
        p.error(str(exc))
    args.plan, plan = {}, entries(args.protocol)
    for name in args.only or list(plan):
        if name not in plan:
            p.error(f"--only: {name} runs with --protocol author only")
        spec, settings = plan[name]
        try:
            exp = experiment.load(spec)
            cfg = exp.config(protocol=args.protocol, **settings, out=str(args.out / name), quiet=True)
            entry = graph.Entry(name, exp, cfg, seeds_of(spec, args.protocol))
            entry.check()
        except (experiment.ConfigError, experiment.OutputError, checkpoint.CheckpointError) as exc:
            p.error(f"{name}: {exc}")
        args.plan[name] = entry
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


def provenance(argv, seconds: float) -> dict:
    """Where the report's numbers come from: the command, when, how long, on what."""
    info = minibn.backend_info()
    return {"command": command_line(argv),
            "made": datetime.datetime.now().isoformat(timespec="seconds"), "seconds": seconds,
            "machine": machine(), "versions": f"Python {info['python']}, minibn {info['minibn']}, NumPy "
                                              f"{info['numpy']} ({info['blas']}), numba {info['numba']}"}


class Sittings:
    """The time a report took over all the commands that made it, killed ones included:
    DIR/sittings.json holds one record per command (its start, its seconds, its tasks gathered),
    rewritten atomically after every task and every ``every`` seconds (a job that checkpoints
    itself keeps its work past its last task), so a sitting cut short counts up to its last minute."""

    def __init__(self, out: Path, argv, every: float = 60.0):
        self.path = out / SITTINGS
        self.all = fileio.load_json(self.path) if self.path.is_file() else []
        self.this = {"command": command_line(argv), "started": datetime.datetime.now().isoformat(timespec="seconds"),
                     "seconds": 0.0, "tasks": 0, "finished": False}
        self.all.append(self.this)
        self.started = time.perf_counter()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.save()
        self._clock = threading.Thread(target=self._keep, args=(every,), name="sittings", daemon=True)
        self._clock.start()

    def _keep(self, every: float) -> None:
        while not self._closed.wait(every):
            self.save()

    def tick(self) -> None:
        with self._lock:
            self.this["tasks"] += 1
        self.save()

    def close(self, finished: bool) -> None:
        """The command's last record (``finished``: it ran to its end)."""
        self._closed.set()
        self._clock.join()
        with self._lock:
            self.this["finished"] = finished
        self.save()

    def save(self) -> None:
        with self._lock:
            self.this["seconds"] = time.perf_counter() - self.started
            fileio.save_json(self.path, self.all)


def command_line(argv) -> str:
    return "python experiments/reproduce.py" + "".join(f" {a}" for a in argv)


def made_line(origin: dict) -> str:
    line = (f"Made {origin['made']} with `{origin['command']}` in {origin['seconds']:.0f} s on {origin['machine']}; "
            f"{origin['versions']}.")
    if origin.get("resumed"):
        line += f" Continued from their checkpoints (the time is this command's): {', '.join(origin['resumed'])}."
    for again in origin.get("rerun", []):
        line += (f" Entries {', '.join(again['entries'])} run again on {again['made']} with `{again['command']}` in "
                 f"{again['seconds']:.0f} s on {again['machine']}; {again['versions']}.")
        if again.get("resumed"):
            line += f" Continued from their checkpoints: {', '.join(again['resumed'])}."
    if len(origin.get("sittings", [])) > 1:
        sittings = origin["sittings"]
        cut = sum(not s["finished"] for s in sittings)
        line += (f" The report took {sum(s['seconds'] for s in sittings):.0f} s of wall-clock time in all, over "
                 f"{len(sittings)} commands into its folder ({cut} cut short, each counted up to the last time it "
                 f"wrote {SITTINGS}, which lists them).")
    if origin.get("rejudged"):
        line += f" Claims decided again on {origin['rejudged']} by the rules of that day (`--rejudge`)."
    return line


def report_lines(results: dict, origin: dict, figures) -> list:
    """The report in Markdown from {entry: metrics or {"error": ...}}; ``figures(entry)`` gives the
    Markdown of the entry's figures."""
    claims = [{"entry": name, **c} for name, m in results.items() for c in m.get("claims", [])]
    lines = [
        "# Reproduction report",
        "",
        made_line(origin),
        "",
        "Each verdict is computed by the experiment from the numbers it measured, by the rule listed "
        "below the table; the evidence column shows those numbers, the setting column what was run (MLPs "
        "on MNIST where the documents used larger networks or data sets).",
        "",
        f"Verdicts: {verdict_counts(claims)} ({len(claims)} claims).",
        "",
        "| entry | seed | section | claim | setting | evidence | verdict | figures |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, metrics in results.items():
        if "error" in metrics:
            lines.append(f"| {name} | | | | | | FAILED: {pages.cell(metrics['error'])} | |")
        for i, c in enumerate(metrics.get("claims", [])):  # the run's figures on its first row
            lines.append("| " + " | ".join(pages.cell(v) for v in (
                name, c["seed"], c["section"], c["claim"], c["setting"], pages.fmt(c["evidence"]),
                f"**{c['verdict']}**", figures(name) if i == 0 else "")) + " |")
    numbers = document_numbers(results)
    if numbers:
        lines += ["", "## The documents' numbers beside this rerun's", "",
                  "Each number a document prints (in its text, its tables, or the values of its figures and of its "
                  "author's code's output), beside the same quantity measured here; several runs show as mean "
                  "+- standard deviation (range, count).", "", *pages.numbers_table(numbers)]
    lines += ["", "## Rules", ""]
    lines += [f"- **{c['id']}** ({c['entry']}): {c['rule']}" for c in claims]
    failed = {n: m for n, m in results.items() if "error" in m}
    if failed:
        lines += ["", "## Failures", ""]
        for name, m in failed.items():
            lines += [f"### {name}", "", "```", m.get("traceback", m["error"]).rstrip(), "```", ""]
    return lines


def document_numbers(results: dict) -> list:
    return [{"entry": name, **n} for name, m in results.items() for n in m.get("document_numbers", [])]


def write_report(out: Path, results: dict, origin: dict) -> Path:
    """REPRODUCTION.md and claims.json in ``out`` from {entry: metrics or {"error": ...}}."""
    def figures(name):
        return ", ".join(f"[{Path(f).stem}]({name}/{Path(f).name})" for f in _pngs(out, name))

    path = out / REPORT
    fileio.write_atomic(path, ("\n".join(report_lines(results, origin, figures)) + "\n").encode())
    fileio.save_json(out / CLAIMS, {"origin": origin, "entries": list(results),
                                    "claims": [{"entry": n, **c} for n, m in results.items() for c in m.get("claims", [])],
                                    "document_numbers": document_numbers(results),
                                    "failed": {n: m["error"] for n, m in results.items() if "error" in m}})
    return path


def verdict_counts(claims: list) -> str:
    """How many claims got each verdict, in words: "3 REPRODUCED, 0 NOT-REPRODUCED, ..."."""
    tally = count(c["verdict"] for c in claims)
    return ", ".join(f"{tally[v]} {v}" for v in VERDICTS)


def summary_line(saved: dict) -> str:
    """The README's sentence on a report, from its claims.json: the verdict counts, the wall-clock time of
    all its commands, and the machine (the README's test checks that it quotes this very sentence)."""
    origin = saved["origin"]
    seconds = sum(s["seconds"] for s in origin.get("sittings", [])) or origin["seconds"]
    return (f"{len(saved['claims'])} claims: {verdict_counts(saved['claims'])}; {seconds / 3600:.1f} h of "
            f"wall-clock time on {origin['machine']}.")


def _pngs(out: Path, entry: str) -> list:
    return sorted((out / entry).glob("*.png")) if entry != COMBINED else []


def rejudge_entries(out: Path, entries: list) -> dict:
    results = {}
    for name in entries:
        if name == COMBINED:
            continue
        try:
            results[name] = graph.rejudge_entry(out / name)
        except experiment.RejudgeError as exc:
            results[name] = {"error": str(exc)}
            print(f"{name}: {exc}", file=sys.stderr)
    return results


def write_docs(docs: Path, out: Path, results: dict, origin: dict) -> list:
    """One page per experiment of the report (docs/<experiment>.md), an index (docs/index.md), the rules
    (docs/claims.md), the whole report with each entry's figures on its experiment's page
    (docs/report.md) and its numbers (docs/claims.json)."""
    by_experiment = defaultdict(list)
    for name, metrics in results.items():
        if name != COMBINED:
            by_experiment[entries()[name][0] if name in entries() else name].append(name)
    made = made_line(origin)
    written = []
    for spec, names in by_experiment.items():
        exp = experiment.load(spec)
        runs = [(n, results[n], out / n) for n in names]
        written.append(pages.write_page(docs / f"{exp.name}.md", exp, runs, made))
    claims = [{"entry": n, **c} for n, m in results.items() for c in m.get("claims", [])]
    lines = ["# Results", "", f"*{made}*", "",
             "Every claim the experiments check, with the verdict its run computed; each experiment's page has "
             "the numbers, the evidence, the rules and the figures.", "",
             f"Verdicts: {verdict_counts(claims)} ({len(claims)} claims).", "",
             "| claim | experiment | verdict |", "| --- | --- | --- |"]
    for c in claims:
        spec = entries().get(c["entry"], (c["entry"],))[0]
        where = f"[{c['entry']}]({experiment.load(spec).name}.md)" if c["entry"] in entries() else c["entry"]
        lines.append(f"| **{c['id']}**: {pages.cell(c['claim'])} | {where} | **{c['verdict']}** |")
    lines += ["", "How each claim is decided, and the sameness margins: [the rules](claims.md); the whole report, "
              "with every claim's evidence: [the report](report.md) (and its numbers, [claims.json](claims.json))."]
    if results.get(COMBINED, {}).get("claims"):  # their evidence is on no experiment's page
        lines += ["", "## Claims combined from several entries", "", *pages.claims_table(results[COMBINED]["claims"])]
    if document_numbers(results):
        lines += ["", "## The documents' numbers beside this rerun's", "", *pages.numbers_table(document_numbers(results))]
    index = docs / "index.md"
    fileio.write_atomic(index, ("\n".join(lines) + "\n").encode())
    rules = ["# The rules", "", f"*{made}*", "",
             "Every claim of the report: the procedure that decides it, the margin within which a claim of sameness "
             "counts values as the same, and its rule in words (where the margin is justified).", "",
             "| claim | test | margin |", "| --- | --- | --- |"]
    rules += [f"| **{c['id']}** | {pages.cell(c.get('test') or '')} | "
              f"{pages.cell(_margin(c.get('margin')))} |" for c in claims]
    rules += ["", "## In words", ""] + [f"- **{c['id']}** ({c['entry']}): {c['rule']}" for c in claims]
    page = docs / "claims.md"
    fileio.write_atomic(page, ("\n".join(rules) + "\n").encode())
    pages_of = {n: experiment.load(entries()[n][0]).name for n in results if n in entries()}
    report = docs / "report.md"
    fileio.write_atomic(report, ("\n".join(report_lines(
        results, origin, lambda n: f"[on its page]({pages_of[n]}.md)" if n in pages_of else "")) + "\n").encode())
    numbers = docs / CLAIMS
    fileio.write_atomic(numbers, (out / CLAIMS).read_bytes())
    return [index, page, report, numbers, *written]


def _margin(given) -> str:
    return "" if not given else f"{pages.fmt(given['value'])} {given['unit']}"


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    out = args.out.resolve()
    if args.rejudge:
        saved = fileio.load_json(out / CLAIMS)
        origin = {**saved["origin"], "rejudged": datetime.datetime.now().isoformat(timespec="seconds")}
        results = rejudge_entries(out, saved["entries"])
    else:
        out.mkdir(parents=True, exist_ok=True)
        previous = fileio.load_json(out / CLAIMS) if (out / CLAIMS).is_file() else None
        resumed = [n for n, entry in args.plan.items() if entry.continues()]
        sittings = Sittings(out, argv)
        try:
            ran = graph.run_entries(list(args.plan.values()), **args.where, quiet=args.quiet,  # in --only's order
                                    on_done=sittings.tick)
        except BaseException:
            sittings.close(finished=False)
            raise
        sittings.close(finished=True)
        results = {n: ran[n] for n in entries() if n in ran}  # the report's order: the registry's
        for name, m in results.items():
            if "error" in m:
                print(f"{name} failed: {m['error']}", file=sys.stderr)
        origin = provenance(argv, sittings.this["seconds"])  # this command's time, as sittings.json has it
        if resumed:
            origin["resumed"] = resumed
        if previous:  # the report's other entries stay, decided again by today's rules
            kept = rejudge_entries(out, [n for n in previous["entries"] if n not in results])
            results = {n: results.get(n, kept.get(n)) for n in [*entries(), *kept] if n in results or n in kept}
            again = {**origin, "entries": list(args.plan)}
            origin = {**previous["origin"], "rerun": [*previous["origin"].get("rerun", []), again],
                      "rejudged": origin["made"]}
        origin["sittings"] = sittings.all
    combined = combined_claims(results)
    if combined:
        results[COMBINED] = {"claims": combined}
    path = write_report(out, results, origin)
    print(f"wrote {path}\nwrote {out / CLAIMS}")
    if args.docs:
        for page in write_docs(Path(args.docs), out, results, origin):
            print(f"wrote {page}")
        print(f"the README quotes: {summary_line(fileio.load_json(out / CLAIMS))}")
    if any("error" in m for m in results.values()):
        sys.exit(1)
    return results


if __name__ == "__main__":
    main()
