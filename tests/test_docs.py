"""The README and docs/: their Python examples run as written (an example experiment runs as one),
printed output shown after an example is what it prints, every page is in the site's navigation, the
site builds with ``mkdocs build --strict``, and the README stays a front page."""

import contextlib
import importlib
import importlib.util
import io
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import minibn as mb
from minibn import experiment

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "results" not in p.parts)]
EXAMPLE = re.compile(r"```python\n(.*?)```(?:\n+```text\n(.*?)```)?", flags=re.S)
EXAMPLES = [(page, i, code, shown) for page in PAGES
            for i, (code, shown) in enumerate(EXAMPLE.findall(page.read_text()))]


def test_there_are_examples_to_run():
    assert len(EXAMPLES) >= 6 and any(shown for *_, shown in EXAMPLES)


@pytest.mark.parametrize("page, index, code, shown", EXAMPLES,
                         ids=[f"{p.relative_to(ROOT)}:{i}" for p, i, _, _ in EXAMPLES])
def test_an_example_runs_as_written(page, index, code, shown, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example may write files (drawings) where it runs
    if "experiment.main(__name__)" in code:  # an example experiment: run it, as a module, in its quick preset
        (tmp_path / "docs_example.py").write_text(code)
        monkeypatch.syspath_prepend(str(tmp_path))  # (worker processes start with this import path)
        module = importlib.import_module("docs_example")
        metrics = experiment.main(module, ["--quick", "--quiet", "--out", str(tmp_path / "run")])
        assert metrics["claims"] and all(c["verdict"] in experiment.VERDICTS for c in metrics["claims"])
        assert metrics["figure_errors"] == {} and any(f.endswith(".png") for f in metrics["files"])
        sys.modules.pop("docs_example")
        return
    namespace = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, f"{page.name} example {index}", "exec"), namespace)
    if shown:
        lines = lambda text: [line.rstrip() for line in text.strip("\n").splitlines()]  # noqa: E731
        assert lines(printed.getvalue()) == lines(shown), "the output shown after the example is not what it prints"
    tensors = [v for v in namespace.values() if isinstance(v, mb.Tensor)]
    assert tensors, "an example should leave its tensors behind"
    assert all(np.isfinite(t.detach().numpy()).all() for t in tensors)
    if "gap" in namespace:  # the folded network equals the BN network on its batch, to float32 rounding
        scale = float(namespace["net"](namespace["x"]).abs().max().item())
        assert float(namespace["gap"].item()) <= 1e-5 * max(scale, 1.0)


def test_the_readme_is_a_front_page_whose_links_lead_somewhere():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 300
    for link in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / link).exists(), link
    assert ".venv/bin/python -m pytest" in text and "experiments/mnist_depth10.py" in text


def test_the_readme_quotes_the_committed_reports_verdicts():
    """The README's counts are those of docs/results/claims.json, as reproduce.summary_line words them."""
    from experiments import reproduce
    saved = json.loads((DOCS / "results" / "claims.json").read_text())
    assert saved["claims"] and not saved["failed"], "the committed report has failed entries"
    quoted = " ".join((ROOT / "README.md").read_text().split())  # the README wraps its lines
    assert reproduce.summary_line(saved) in quoted, "rewrite the README's line from the report's claims.json"


def _nav_pages(nav) -> set:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, dict):
        return set().union(*(_nav_pages(v) for v in nav.values()))
    return set().union(*(_nav_pages(v) for v in nav))


def test_every_page_is_in_the_navigation_and_every_experiment_has_its_results_page():
    yaml = pytest.importorskip("yaml")
    nav = _nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages == nav, (sorted(pages - nav), sorted(nav - pages))
    for name in experiment.registered():
        page = DOCS / "results" / f"{name}.md"
        assert page.is_file(), "write it: python experiments/reproduce.py --docs docs/results"
        assert page.read_text().startswith(f"# {experiment.load(name).title}")


def test_every_experiments_title_is_its_docstrings_whole_first_line():
    """The title is the first line: a docstring whose first sentence wraps would give a title cut short."""
    for name in experiment.registered():
        lines = experiment.load(name).description.splitlines()
        assert len(lines) == 1 or not lines[1].strip(), f"{name}: the docstring's first line does not stand alone"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed (pip install -e '.[docs]')")
def test_the_site_builds_strictly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "results" / "mnist_depth10" / "index.html").is_file()
