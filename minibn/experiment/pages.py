"""Markdown pages made from finished runs, for the documentation: every number, table and figure on
them comes from a run's metrics.json and its folder, none is typed.

A page is one experiment with one or more runs of it (the entries of a reproduction report):
its title and description, then per run the settings that differ from the defaults, the
summary the run printed and its claims (verdict, evidence and rule), with the main run's
figures (copied next to the page), then the notes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import fileio
from .config import flag
from .protocol import Experiment


def fmt(value) -> str:
    """A measured value in a table cell: 3 significant digits, lists and dicts written out."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "; ".join(f"{k} {fmt(v)}" for k, v in value.items())
    return str(value)


def cell(text) -> str:
    """``text`` safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def changed_settings(exp: Experiment, config: dict) -> str:
    """The flags of ``config`` that differ from the experiment's defaults (the run folder aside)."""
    default = exp.Config().to_dict()
    parts = []
    for name, value in config.items():
        if name in ("out", "quiet") or value == default.get(name):
            continue
        shown = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{flag(name)} {shown}" if not isinstance(value, bool) else
                     (flag(name) if value else f"--no-{flag(name)[2:]}"))
    return " ".join(parts)


def over_runs(value) -> str:
    """A value of one run, or of several (a list of numbers: their mean +- standard deviation, range
    and count), for a table cell."""
    numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)] \
        if isinstance(value, list) else []
    if not numbers or len(numbers) != len(value):
        return fmt(value)
    if len(numbers) == 1:
        return fmt(float(numbers[0]))
    mean = sum(numbers) / len(numbers)
    sd = (sum((v - mean) ** 2 for v in numbers) / (len(numbers) - 1)) ** 0.5
    return f"{mean:.3g} +- {sd:.2g} ({min(numbers):.3g} to {max(numbers):.3g}, n = {len(numbers)})"


def numbers_table(numbers: list) -> list:
    """The documents' numbers beside a run's (``C.number``; with an entry column when they name
    their ``entry``) as a Markdown table."""
    entry = any("entry" in n for n in numbers)
    lines = [("| entry " if entry else "") + "| document | where | quantity | the document | this rerun | note |",
             "| --- " * (7 if entry else 6) + "|"]
    for n in numbers:
        lines.append((f"| {cell(n.get('entry', ''))} " if entry else "") + "| " + " | ".join(cell(v) for v in (
            n["document"], n["where"], n["quantity"], n["theirs"], over_runs(n["ours"]), n.get("note", ""))) + " |")
    return lines


def claims_table(claims: list) -> list:
    """The claims as a Markdown table, then their rules, with the procedure, as a list."""
    lines = ["| claim | seed, section | verdict | evidence |", "| --- | --- | --- | --- |"]
    for c in claims:
        lines.append(f"| **{c['id']}**: {cell(c['claim'])} | {c['seed']}, {cell(c['section'])} | "
                     f"**{c['verdict']}** | {cell(fmt(c['evidence']))} |")
    lines += ["", "How each verdict was decided (the rule the run applied to the evidence):", ""]
    lines += [f"- **{c['id']}**" + (f" ({c['test']})" if c.get("test") else "") + f": {c['rule']}" for c in claims]
    return lines


def write_page(path: Path, exp: Experiment, runs: list, made: str) -> Path:
    """Write the page of ``exp`` to ``path`` from ``runs``: [(entry name, metrics, run folder)], the
    first being the experiment's main run; the figures are copied to ``path``'s folder/<entry>/.
    ``made`` says where the numbers come from (the command, machine and date)."""
    path = Path(path)
    lines = [f"# {exp.title}", "", *_description(exp), "", f"*{made}*", ""]
    for entry, metrics, folder in runs:
        settings = changed_settings(exp, metrics["config"])
        if len(runs) > 1:
            lines += [f"## {entry}", ""]
        command = f"python experiments/{exp.name}.py{' ' + settings if settings else ''}"
        lines += [f"Run: `{command}`, seeds {fmt(metrics['seeds'])}." if "seeds" in metrics else f"Run: `{command}`.",
                  ""]
        if "error" in metrics:
            lines += [f"This run failed: `{metrics['error']}`.", ""]
            continue
        summary = exp.summary({**metrics, "notes": []})
        if summary:
            lines += ["```text", summary, "```", ""]
        lines += claims_table(metrics.get("claims", [])) + [""]
        if metrics.get("document_numbers"):
            lines += ["The numbers the documents print, beside this run's:", "",
                      *numbers_table(metrics["document_numbers"]), ""]
        if entry == runs[0][0]:  # the main run's figures (the others' numbers are in their tables)
            lines += _figures(path.parent, entry, folder)
    notes = runs[0][1].get("notes", []) if runs else []
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    fileio.write_atomic(path, ("\n".join(lines).rstrip() + "\n").encode())
    return path


def _description(exp: Experiment) -> list:
    """The docstring after its first line, its indented command lines as a code block."""
    body = exp.description.split("\n", 1)[1].strip("\n") if "\n" in exp.description else ""
    out, code = [], False
    for line in body.splitlines():
        indented = line.startswith("    ") and line.strip()
        if indented and not code:
            out += ["```bash"]
            code = True
        elif not indented and code and line.strip():
            while out[-1] == "":
                out.pop()
            out += ["```", ""]
            code = False
        out.append(line[4:] if code and indented else line)
    while out and not out[-1].strip():
        out.pop()
    return out + (["```"] if code else [])


def _figures(folder: Path, entry: str, run_folder) -> list:
    """Copy the run's figures to folder/<entry>/ and return the Markdown that shows them."""
    pngs = sorted(Path(run_folder).glob("*.png")) if run_folder else []
    if not pngs:
        return []
    target = folder / entry
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    lines = []
    for png in pngs:
        fileio.write_atomic(target / png.name, png.read_bytes())
        lines += [f"![{entry}: {png.stem.replace('_', ' ')}]({entry}/{png.name})", ""]
    return lines
