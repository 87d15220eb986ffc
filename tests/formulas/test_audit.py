"""One test per audited formula: its verdict and its residual, so that a regression in the engine or
in a formula's check shows up here. Residual bounds: identities at rounding level (complex step),
failing bounds clearly negative, learning-rate brackets at their 1 %."""

import json
import math

import pytest

from minibn import audit
from minibn.audit.__main__ import main as audit_main
from minibn.audit.core import KEYS, VERDICTS

ROUNDING = 1e-13
EXPECTED = {
    # id: (verdict, residual test)
    "F000-31-dW": ("HOLDS", lambda r: r <= ROUNDING),
    "F000-31-dY": ("HOLDS-WITH-CORRECTION", lambda r: r <= ROUNDING),
    "F000-31-BNJ": ("HOLDS-WITH-CORRECTION", lambda r: r <= ROUNDING),
    "F000-31-BNdw": ("HOLDS-WITH-CORRECTION", lambda r: r <= ROUNDING),
    "F000-31-BNdY": ("HOLDS-WITH-CORRECTION", lambda r: r <= ROUNDING),
    "F000-31-SCALE": ("HOLDS", lambda r: r <= ROUNDING),
    "F000-3-EQNET": ("HOLDS", lambda r: r <= ROUNDING),
    "F000-2-OLSBN": ("HOLDS", lambda r: r <= ROUNDING),
    "F000-2-OLSMIN": ("HOLDS", lambda r: r <= 1e-12),
    "F000-2-LR": ("HOLDS-WITH-CORRECTION", lambda r: r < 0.01),
    "F000-1-LR2": ("CONDITIONAL", lambda r: r < 0.01),
    "F000-2-HSTAR": ("HOLDS", lambda r: r <= 1e-9),
    "F000-1-CAI": ("CONDITIONAL", lambda r: r is None),
    "F001-DEF": ("HOLDS", lambda r: r <= ROUNDING),
    "F001-E1": ("BOUND-FAILS", lambda r: r < -0.5),
    "F001-E2": ("HOLDS", lambda r: r <= ROUNDING),
    "F001-E2b": ("HOLDS-WITH-CORRECTION", lambda r: r <= ROUNDING),
    "F001-E3": ("HOLDS", lambda r: r <= ROUNDING),
    "F001-E4": ("BOUND-HOLDS", lambda r: -1e-12 < r <= 1e-12),
    "F001-E5": ("BOUND-HOLDS", lambda r: r >= 0),
    "F001-E6": ("CONDITIONAL", lambda r: r <= ROUNDING),
    "F001-E7": ("CONDITIONAL", lambda r: r <= ROUNDING),
    "F001-E8": ("BOUND-FAILS", lambda r: r < -0.5),
    "F001-E9": ("HOLDS", lambda r: r < 1e-3),
    "F001-E10": ("BOUND-HOLDS", lambda r: abs(r) < 1e-10),
    "F001-E11": ("BOUND-FAILS", lambda r: r < -0.5),
    "F001-E12": ("HOLDS", lambda r: r <= ROUNDING),
    "F001-E13": ("HOLDS", lambda r: r <= 1e-12),
    "F001-E13b": ("BOUND-FAILS", lambda r: r < -0.5),
    "F001-E14": ("FALSE", lambda r: r > 1),
    "F001-E16": ("BOUND-FAILS", lambda r: r < -0.1),
    "F002-GGAMMA": ("HOLDS", lambda r: r <= ROUNDING),
    "F002-GBETA": ("HOLDS-WITH-CORRECTION", lambda r: r <= ROUNDING),
    "F002-GZ": ("HOLDS-WITH-CORRECTION", lambda r: r <= ROUNDING),
    "F002-TAYLOR": ("HOLDS-WITH-CORRECTION", lambda r: r < 0.05),
    "F002-DESCENT": ("FALSE", lambda r: r is None),
    "F002-SCALE": ("HOLDS-WITH-CORRECTION", lambda r: r <= ROUNDING),
    "F002-SIGMA3": ("HOLDS-WITH-CORRECTION", lambda r: r <= 1e-12),
    "F002-CLAIM": ("FALSE", lambda r: r is None),
    "F003-1": ("NOT-CHECKABLE", lambda r: r is None),
    "F003-2": ("NOT-CHECKABLE", lambda r: r is None),
    "F004-L45": ("BOUND-HOLDS", lambda r: abs(r) < 1e-9),
}


@pytest.fixture(scope="module")
def entries():
    return {e.id: e for e in audit.run()}


@pytest.mark.parametrize("formula_id", sorted(EXPECTED))
def test_formula(formula_id, entries):
    entry = entries[formula_id]
    verdict, residual_ok = EXPECTED[formula_id]
    assert entry.verdict == verdict, entry.evidence
    assert residual_ok(entry.residual), f"residual {entry.residual}: {entry.evidence}"
    if verdict in ("HOLDS-WITH-CORRECTION", "CONDITIONAL"):
        assert entry.corrected, "a verdict that needs a corrected form must give one"


def test_every_registered_formula_is_expected_and_covered(entries):
    assert set(entries) == set(EXPECTED)
    required = {f"F001-E{k}" for k in list(range(1, 15)) + [16]} | {"F001-E2b", "F001-E13b"}
    assert required <= set(entries)


def test_json_has_exactly_the_keys(tmp_path, capsys):
    path = tmp_path / "audit.json"
    assert audit_main(["--json", str(path), "--only", "F000-31-dW", "F001-E1"]) == 0
    data = json.loads(path.read_text())
    assert [set(e) for e in data] == [set(KEYS)] * 2
    assert all(e["verdict"] in VERDICTS for e in data)
    assert all(e["residual"] is None or math.isfinite(e["residual"]) for e in data)
    assert "F001-E1" in capsys.readouterr().out


def test_unknown_ids_are_refused(capsys):
    with pytest.raises(SystemExit):
        audit_main(["--only", "F999"])
    assert "unknown formula ids: F999" in capsys.readouterr().err


def test_the_documentation_page_holds_the_audit_of_today(entries):
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "results" / "audit.md").read_text()
    table = text.split("## Entries")[0]
    rows = dict(re.findall(r"^\| (F[0-9A-Za-z-]+) \| [^|]*(?:\\\|[^|]*)* \| \*\*([A-Z-]+)\*\*", table, flags=re.M))
    assert rows == {k: e.verdict for k, e in entries.items()}, \
        "write the page again: python -m minibn.audit --markdown docs/results/audit.md"
