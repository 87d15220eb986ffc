"""The documents' chain-rule formulas, each checked against finite differences, with a verdict.

    python -m minibn.audit [--json PATH] [--markdown PATH]

``run()`` returns one :class:`Entry` per formula; see ``core.py`` for how
verdicts follow from the measured residuals and slacks.
"""

from . import seed000, seed001, seed001_hessian, seed002, seed003_004  # noqa: F401  (register their formulas)
from .core import KEYS, REGISTRY, VERDICTS, Entry


def run(ids=None) -> list:
    """Check every registered formula (or those in ``ids``) and return the entries."""
    return [f.run() for f in REGISTRY if ids is None or f.id in ids]


__all__ = ["Entry", "KEYS", "REGISTRY", "VERDICTS", "run"]
