"""Claims: what a document states, what was run, what was measured, and the verdict a stated
rule gives on those measurements.

A verdict is never written by hand: :func:`claim` takes the evidence and a ``decide``
function, and records what ``decide(evidence)`` returns, with the name of the statistical
procedure (``test``) and, for a claim of sameness ("similar", "comparable", "not significant",
"unaffected", "nearly as well"), the ``margin`` within which values count as the same, justified
in the rule's words. An experiment's claims are a :class:`Claims`, one rule function per claim
(or family of claims), each computing its evidence from the run's metrics alone, so that
``rejudge`` can decide them again from a saved metrics.json; each ``decide`` is a module-level
function of the evidence alone, so that a test can give it synthetic evidence for every verdict.

The statistics are :mod:`minibn.experiment.stats`'s (re-exported here); a difference not shown
is not a sameness shown: sameness needs an equivalence test against a margin, and a claim that
neither is shown for is INCONCLUSIVE.
"""

from __future__ import annotations

import math

import numpy as np

from .stats import (compare, correlation, equivalence_test, holm, minimum_detectable_difference,  # noqa: F401
                    noninferiority_test, paired_compare, paired_log_ratio, paired_t_compare, paired_t_test,
                    partial_correlation, partial_correlation_test, prediction_interval, sign_test, spread)

__all__ = ["FIELDS", "INCONCLUSIVE", "NOT_REPRODUCED", "PARTLY", "REPLICATION_RULE", "REPRODUCED", "SMALLER_FACTOR",
           "SMALLER_TEST", "VERDICTS", "ClaimError", "Claims", "MissingEvidence", "claim", "compare", "correlation",
           "count", "decide_replicated", "decide_smaller", "equivalence_test", "holm", "margin",
           "minimum_detectable_difference", "noninferiority_test", "number", "numbers_over_runs", "over_runs", "paired_compare", "paired_log_ratio",
           "paired_t_compare", "paired_t_test", "partial_correlation", "partial_correlation_test",
           "prediction_interval", "replicated", "sign_test", "smaller", "smaller_rule", "spread"]

REPRODUCED = "REPRODUCED"
NOT_REPRODUCED = "NOT-REPRODUCED"
PARTLY = "PARTLY"
INCONCLUSIVE = "INCONCLUSIVE"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, PARTLY, INCONCLUSIVE)
FIELDS = ("id", "seed", "section", "claim", "setting", "evidence", "verdict", "rule", "test", "margin")


def claim(id: str, seed: str, section: str, text: str, setting: str, evidence: dict, rule: str, decide, *,
          test: str, margin: dict | None = None) -> dict:
    """A checked claim as a dict of :data:`FIELDS`: ``seed`` names the document (e.g. "000"),
    ``text`` quotes or closely paraphrases it, ``setting`` says what was run, ``evidence`` holds
    the measured numbers, and the verdict is ``decide(evidence)``, one of :data:`VERDICTS`,
    following ``rule`` (the rule in words), by the procedure ``test``; ``margin`` ({"value",
    "unit"}) is the sameness margin of a claim of sameness."""
    verdict = decide(evidence)
    if verdict not in VERDICTS:
        raise ValueError(f"claim {id}: decide returned {verdict!r}, not one of {VERDICTS}")
    if not test:
        raise ValueError(f"claim {id}: name the procedure that decides it (test=...)")
    return {"id": id, "seed": seed, "section": section, "claim": text, "setting": setting,
            "evidence": evidence, "verdict": verdict, "rule": rule, "test": test, "margin": margin}


def margin(value: float, unit: str) -> dict:
    """A claim's sameness margin, as :func:`claim` records it."""
    return {"value": value, "unit": unit}


class ClaimError(ValueError):
    """A claim that cannot be decided from the metrics it was given; the message names the claim
    and, for missing evidence, the key."""


class MissingEvidence(KeyError):
    """A key the metrics lack, with its path from the top ("networks/plain/interventions")."""


class _Dict(dict):
    """A dict of the metrics that remembers where it is, so that a missing key names its path."""

    def __init__(self, data, path: str):
        super().__init__(data)
        self._path = path

    def __getitem__(self, key):
        try:
            value = super().__getitem__(key)
        except KeyError:
            raise MissingEvidence(f"{self._path}{key}") from None
        return _tracked(value, f"{self._path}{key}/")

    def get(self, key, default=None):
        return self[key] if key in self else default

    def values(self):
        return [self[k] for k in self]

    def items(self):
        return [(k, self[k]) for k in self]


class _List(list):
    def __init__(self, data, path: str):
        super().__init__(data)
        self._path = path

    def __getitem__(self, index):
        value = super().__getitem__(index)
        return _List(value, self._path) if isinstance(index, slice) else _tracked(value, f"{self._path}{index}/")

    def __iter__(self):
        return (_tracked(v, f"{self._path}{i}/") for i, v in enumerate(super().__iter__()))


def _tracked(value, path: str):
    if isinstance(value, dict) and not isinstance(value, _Dict):
        return _Dict(value, path)
    if isinstance(value, list) and not isinstance(value, _List):
        return _List(value, path)
    return value


class Claims:
    """An experiment's claims, in the order they are declared:

        claims = C.Claims()

        @claims.rule("D10-LR1")
        def lr_one(metrics):            # -> a claim, a list of claims, or None (not applicable)
            ...
            return C.claim("D10-LR1", ..., decide_lr_one, test="threshold")

    ``claims(metrics)`` decides every one; a rule whose metrics lack a key it reads raises
    :class:`ClaimError` naming the claim and the key (a run saved before the rule asked for it).
    """

    def __init__(self):
        self.rules: list = []  # (ids, function)

    def rule(self, *ids: str):
        """Register the decorated ``function(metrics)`` as the rule of the claims ``ids`` (a family
        written as "NORM-ACC-<variant>")."""
        if not ids:
            raise ValueError("Claims.rule: name the claim ids the rule decides")

        def register(function):
            self.rules.append((ids, function))
            return function
        return register

    def __call__(self, metrics: dict) -> list:
        out = []
        for ids, function in self.rules:
            try:
                made = function(_tracked(metrics, ""))
            except MissingEvidence as exc:
                raise ClaimError(f"claim {' / '.join(ids)}: the metrics lack {exc.args[0]!r}, which its rule "
                                 "reads (a run saved before the rule asked for it?)") from exc
            out.extend([] if made is None else [made] if isinstance(made, dict) else made)
        return out


def count(verdicts) -> dict:
    """How many claims got each verdict."""
    verdicts = list(verdicts)
    return {v: verdicts.count(v) for v in VERDICTS}


# -- a shape of claim several experiments share: "X is smaller with batch norm" -----------------------------

SMALLER_FACTOR = 1.25
SMALLER_TEST = ("paired t-test of log10(bn) - log10(plain) over the seeds (p < 0.05); TOST on the logs against "
                f"a factor {SMALLER_FACTOR} for 'not smaller'")
SMALLER_RULE = ("per seed, the {what} of each network: REPRODUCED if batch norm's is significantly smaller (paired "
                "t-test of log10({bn}) - log10({plain}) over the seeds, p < 0.05); NOT-REPRODUCED if it is "
                "significantly larger, or if the two are equal within a factor {factor} (TOST on the logs, alpha "
                "0.05: a change of less than {percent:.0f} % is not the smoothing the claim describes); INCONCLUSIVE "
                "otherwise (neither shown: see the minimum detectable ratio), with one seed, or where a seed's "
                "value is not positive (no ratio)")


def smaller(a, b, names: tuple, factor: float = SMALLER_FACTOR) -> dict:
    """Evidence that the positive values ``a`` (one per seed) are smaller than ``b`` on the same
    seeds: the paired t-test of their logs, the TOST of 'equal within ``factor``', and the smallest
    ratio the t-test detects with power 0.8 at this many seeds."""
    tested = paired_log_ratio(a, b, names)
    out = {**tested, f"{names[0]}_smaller_in_seeds": int(np.sum(np.less(a, b)))}
    if tested["non_positive"]:  # no ratio: neither difference nor sameness is tested
        return {**out, "equivalence": {"equivalent": False, "reason": tested["result"]},
                "minimum_detectable_ratio": math.nan}
    logs = np.log10(np.asarray(a, dtype=float)) - np.log10(np.asarray(b, dtype=float))
    sd = float(np.std(logs, ddof=1)) if len(logs) > 1 else float("nan")
    return {**out, "equivalence": equivalence_test(a, b, margin=factor, ratio=True),
            "minimum_detectable_ratio": _power_of_ten(minimum_detectable_difference(len(logs), sd))}


def _power_of_ten(x: float) -> float:
    """10 ** x, inf past the float range (a ratio no test at this spread detects)."""
    with np.errstate(over="ignore"):
        return float(np.power(10.0, x))


def decide_smaller(e) -> str:
    """:data:`SMALLER_RULE` on :func:`smaller`'s evidence."""
    if e["seeds"] < 2:
        return INCONCLUSIVE
    if e["result"].startswith("smaller"):
        return REPRODUCED
    if e["result"].startswith("larger") or e["equivalence"]["equivalent"]:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def smaller_rule(what: str, bn: str = "bn", plain: str = "plain", factor: float = SMALLER_FACTOR) -> str:
    return SMALLER_RULE.format(what=what, bn=bn, plain=plain, factor=factor, percent=100 * (1 - 1 / factor))


# -- the numbers the documents print, beside the rerun's -------------------------------------------------


def number(document: str, where: str, quantity: str, theirs, ours, note: str = "") -> dict:
    """A number ``document`` prints (``where``: its section, table or figure), as ``theirs``, beside
    this run's value of the same ``quantity`` (a number, or one per seed), with ``note`` saying how
    the two settings differ or how ``theirs`` was read (e.g. off a figure, approximately)."""
    return {"document": document, "where": where, "quantity": quantity, "theirs": theirs, "ours": ours,
            "note": note}


def numbers_over_runs(numbers_by_run: dict) -> list:
    """The documents' numbers of several runs of one setting ({run name: its numbers}), each once,
    with ``ours`` the list of the runs' values, in the runs' order."""
    merged = {}
    for numbers in numbers_by_run.values():
        for n in numbers:
            key = (n["document"], n["where"], n["quantity"])
            merged.setdefault(key, {**n, "ours": []})["ours"].append(n["ours"])
    return list(merged.values())


# -- one claim decided in several runs (seeds, or variants of a setting) ----------------------------------

REPLICATION_RULE = ("REPRODUCED if REPRODUCED in every run; PARTLY if REPRODUCED or PARTLY in some; NOT-REPRODUCED "
                    "if in none and NOT-REPRODUCED in one; INCONCLUSIVE otherwise (a run without the claim counts "
                    "as INCONCLUSIVE)")


def replicated(verdicts) -> str:
    """The verdict of a claim decided separately in several runs, by :data:`REPLICATION_RULE`."""
    verdicts = set(verdicts)
    if verdicts == {REPRODUCED}:
        return REPRODUCED
    if verdicts & {REPRODUCED, PARTLY}:
        return PARTLY
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE


def decide_replicated(e) -> str:
    return replicated(v if v in VERDICTS else INCONCLUSIVE for v in e["verdicts"].values())


def over_runs(claims_by_run: dict, what: str) -> list:
    """Each claim of several runs ({run name: the claims it decided}, e.g. {"seed=0": [...], ...}) as
    one claim: its words from the first run that has it, each run's verdict and evidence as the
    evidence, and :func:`replicated` over the runs' verdicts as its verdict. ``what`` says what the
    runs are ("5 seeds, one run each")."""
    runs = list(claims_by_run)
    ids = list(dict.fromkeys(c["id"] for claims in claims_by_run.values() for c in claims))
    out = []
    for cid in ids:
        found = {r: next((c for c in claims_by_run[r] if c["id"] == cid), None) for r in runs}
        model = next(c for c in found.values() if c is not None)
        e = {"verdicts": {r: c["verdict"] if c else "absent" for r, c in found.items()},
             "evidence": {r: c["evidence"] for r, c in found.items() if c}}
        out.append(claim(cid, model["seed"], model["section"], model["claim"], f"{model['setting']}; {what}", e,
                         f"the claim decided in each run by its own rule, then over the runs: {REPLICATION_RULE}. "
                         f"The rule in each run: {model['rule']}", decide_replicated,
                         test=f"the runs' verdicts, each by: {model['test']}", margin=model.get("margin")))
    return out
