"""The audit's outputs: JSON (a list of entries with exactly the keys of ``KEYS``) and markdown."""

from __future__ import annotations


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _residual(value) -> str:
    return "" if value is None else f"{value:.1e}"


def markdown_table(entries) -> str:
    """One row per formula: id, where, verdict, residual, and the formula as written."""
    lines = ["| id | where | verdict | residual | as written |", "| --- | --- | --- | --- | --- |"]
    for e in entries:
        lines.append(f"| {e.id} | {_cell(e.where)} | **{e.verdict}** | {_residual(e.residual)} | {_cell(e.as_written)} |")
    return "\n".join(lines)


def markdown(entries, path=None) -> str:
    """The table, then each entry in full (reading, correction, evidence); ``path``, the file it
    goes to, is named in the command that writes it again."""
    command = f"python -m minibn.audit --markdown {path or 'PATH'}"
    parts = ["# Formula audit: the verdicts", "", f"*Written by `{command}`: every verdict and residual below comes "
             "from that run; do not edit it by hand.*", "", markdown_table(entries), "", "## Entries", ""]
    for e in entries:
        parts += [f"### {e.id} ({e.seed}, {e.where}): {e.verdict}", "", f"- as written: {e.as_written}",
                  f"- reading: {e.interpretation}"]
        if e.corrected:
            parts.append(f"- corrected: {e.corrected}")
        parts += [f"- residual: {_residual(e.residual) or 'n/a'}", f"- evidence: {e.evidence}", ""]
    return "\n".join(parts)


def as_json(entries) -> list:
    return [e.as_dict() for e in entries]
