"""The reproduction report gathers every registered experiment's claims into one table."""

import json
import re
import time

import pytest

from experiments import reproduce
from minibn import experiment, fileio

TINY = {"width": 8, "depth": 3, "train_size": 300, "steps": 3}


def test_every_registered_entry_is_an_experiment_with_a_valid_config(tmp_path):
    for protocol in ("quick", "default", "author"):
        for name, (spec, settings) in reproduce.entries(protocol).items():
            experiment.load(spec).config(protocol=protocol, **settings, out=str(tmp_path / name)).check()


def test_the_author_protocol_takes_each_experiments_author_preset_and_adds_its_entries(tmp_path, capsys):
    plan = reproduce.parse_args(["--protocol", "author", "--out", str(tmp_path / "r")]).plan
    assert set(plan) == set(reproduce.REGISTRY) | set(reproduce.AUTHOR_ENTRIES)
    normalizations = plan["normalizations"].config
    assert (normalizations.epochs, normalizations.hessian_every, normalizations.seeds) == (200, 100, 5)
    assert plan["noise_robustness"].config.sizes == tuple(range(100, 1001, 100))
    assert plan["mnist_depth10_author_code"].config.batch_size == 64 and plan["mnist_depth10"].config.batch_size is None
    assert plan["mnist_depth10"].seeds == 5 and plan["normalizations"].seeds == 1  # a grid has its own seeds
    default = reproduce.parse_args(["--out", str(tmp_path / "d")]).plan
    assert "mnist_depth10_author_code" not in default and default["mnist_depth10"].seeds == 1
    quick = reproduce.parse_args(["--quick", "--out", str(tmp_path / "q")]).plan
    assert quick["normalizations"].config.epochs == experiment.load("normalizations").quick["epochs"]
    for argv, said in ((["--quick", "--protocol", "author"], "--quick: not with --protocol author"),
                       (["--only", "mnist_depth10_author_code"], "--only: mnist_depth10_author_code runs with "
                                                                 "--protocol author only")):
        with pytest.raises(SystemExit) as exit_:
            reproduce.parse_args(argv + ["--out", str(tmp_path / "x")])
        assert exit_.value.code == 2 and said in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_report_holds_every_claim_with_its_verdict_and_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reproduce, "REGISTRY", {"depth": ("mnist_depth10", TINY),
                                                "depth_l1": ("mnist_depth10", {**TINY, "norm": "l1"}),
                                                "toy": ("tests.toy_experiment", {})})
    out = tmp_path / "report"
    results = reproduce.main(["--quick", "--out", str(out), "--quiet"])
    assert f"wrote {out.resolve() / 'REPRODUCTION.md'}" in capsys.readouterr().out
    text = (out / "REPRODUCTION.md").read_text()
    assert "`python experiments/reproduce.py --quick --out" in text and "minibn 0.1.0" in text
    claims = json.loads((out / "claims.json").read_text())["claims"]
    expected = [(n, c["id"], c["verdict"]) for n, m in results.items() for c in m["claims"]]
    assert [(c["entry"], c["id"], c["verdict"]) for c in claims] == expected
    table = text.split("\n## ")[0]  # the claims table, before the sections under it
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith(("| entry", "| ---"))]
    assert len(rows) == len(expected)
    for row, (entry, _, verdict) in zip(rows, expected):
        assert row.startswith(f"| {entry} |") and f"**{verdict}**" in row
    for link in re.findall(r"\]\(([^)]+\.png)\)", text):
        assert (out / link).is_file(), link
    assert "D10-NORM-L1" in text and "TOY-1" in text and "## Rules" in text
    final = results["toy"]["loss"][-1]
    assert f"| toy | none | its table | the final loss | 0.5 | {final:.3g} | a made-up number |" in text
    assert "| depth | 000 | sec. 3 | the plain network at lr = 1: the step it diverges at | diverges |" in text
    saved = json.loads((out / "claims.json").read_text())["document_numbers"]
    assert {"entry": "toy", **results["toy"]["document_numbers"][0]} in saved
    combined = results["combined"]["claims"]
    assert [c["id"] for c in combined] == ["NORM-HIGHER-LR"]
    l1 = next(c for c in results["depth_l1"]["claims"] if c["id"] == "D10-NORM-L1")
    assert combined[0]["evidence"]["verdicts"] == {"l1": l1["verdict"]}
    assert combined[0]["verdict"] == l1["verdict"]  # one normalization: its own verdict
    counts = re.search(r"Verdicts: (\d+) REPRODUCED, (\d+) NOT-REPRODUCED, (\d+) PARTLY, (\d+) INCONCLUSIVE", text)
    assert sum(map(int, counts.groups())) == len(expected)


def test_a_failing_experiment_is_reported_and_the_others_still_run(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "REGISTRY", {"broken": ("tests.toy_experiment", {"fail_at": 1}),
                                                "fine": ("tests.toy_experiment", {})})
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(["--quick", "--out", str(tmp_path / "r"), "--quiet"])
    assert exit_.value.code == 1
    text = (tmp_path / "r" / "REPRODUCTION.md").read_text()
    assert "| broken | | | | | | FAILED: RuntimeError: toy_experiment fails at step 1" in text
    assert "| fine |" in text and "## Failures" in text


def test_rejudge_rebuilds_the_report_from_its_runs_and_docs_get_a_page_per_experiment(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reproduce, "REGISTRY", {"depth": ("mnist_depth10", TINY),
                                                "depth_l1": ("mnist_depth10", {**TINY, "norm": "l1"}),
                                                "toy": ("tests.toy_experiment", {})})
    out = tmp_path / "report"
    results = reproduce.main(["--quick", "--out", str(out), "--quiet"])
    report = (out / "REPRODUCTION.md").read_text()
    for entry in ("depth", "toy"):  # the claims gone from the runs' metrics
        metrics = fileio.load_json(out / entry / "metrics.json")
        fileio.save_json(out / entry / "metrics.json", {k: v for k, v in metrics.items() if k != "claims"})
    (out / "REPRODUCTION.md").unlink()
    docs = tmp_path / "docs"
    again = reproduce.main(["--rejudge", str(out), "--docs", str(docs)])
    assert [(n, c["id"], c["verdict"]) for n, m in again.items() for c in m["claims"]] == \
        [(n, c["id"], c["verdict"]) for n, m in results.items() for c in m["claims"]]
    rebuilt = (out / "REPRODUCTION.md").read_text()
    assert rebuilt.split("\n", 3)[3] == report.split("\n", 3)[3]  # all but the line saying when it was made
    assert "`python experiments/reproduce.py --quick --out" in rebuilt and "Claims decided again on" in rebuilt
    printed = capsys.readouterr().out
    assert f"wrote {docs / 'index.md'}" in printed and f"wrote {docs / 'mnist_depth10.md'}" in printed
    page = (docs / "mnist_depth10.md").read_text()
    assert page.startswith("# Why does batch norm allow a high learning rate?")
    assert "## depth\n" in page and "## depth_l1\n" in page and "--norm l1" in page
    assert "**D10-LR1**" in page and "**D10-NORM-L1**" in page and "How each verdict was decided" in page
    for link in re.findall(r"\]\(([^)]+\.png)\)", page):
        assert (docs / link).is_file(), link
    index = (docs / "index.md").read_text()
    assert "[depth](mnist_depth10.md)" in index and "**NORM-HIGHER-LR**" in index
    assert "## Claims combined from several entries" in index and "verdicts l1" in index  # with its evidence
    assert (docs / "toy_experiment.md").read_text().startswith("# A tiny experiment on the framework")
    whole = (docs / "report.md").read_text()
    rows = [line for line in rebuilt.splitlines() if line.startswith("| depth |")]
    assert [line for line in whole.splitlines() if line.startswith("| depth |")] == \
        [row.replace(row.rsplit(" | ", 1)[1], "[on its page](mnist_depth10.md) |") if "](depth/" in row else row
         for row in rows]  # the figures on the experiment's page instead of in the run folder
    assert "| toy | none | its table | the final loss | 0.5 |" in whole and "## The documents' numbers" in index
    assert json.loads((docs / "claims.json").read_text())["claims"] == json.loads((out / "claims.json").read_text())["claims"]


def test_only_into_a_finished_report_runs_those_entries_and_keeps_the_others(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "REGISTRY", {"first": ("tests.toy_experiment", {}),
                                                "second": ("tests.toy_experiment", {"steps": 4})})
    out = tmp_path / "report"
    whole = reproduce.main(["--quick", "--out", str(out), "--quiet"])
    first = (out / "first" / "checkpoint.ckpt").read_bytes()
    for f in (out / "second").iterdir():
        f.unlink()
    again = reproduce.main(["--quick", "--only", "second", "--out", str(out), "--quiet"])
    assert list(again) == ["first", "second"]
    assert [(n, c["id"], c["verdict"], c["evidence"]) for n, m in again.items() for c in m["claims"]] == \
        [(n, c["id"], c["verdict"], c["evidence"]) for n, m in whole.items() for c in m["claims"]]
    saved = json.loads((out / "claims.json").read_text())
    assert saved["entries"] == ["first", "second"] and [c["entry"] for c in saved["claims"]].count("first") >= 1
    header = (out / "REPRODUCTION.md").read_text().splitlines()[2]
    assert "`python experiments/reproduce.py --quick --out" in header
    assert "Entries second run again on" in header and "--only second" in header
    assert (out / "first" / "checkpoint.ckpt").read_bytes() == first  # kept, not run


def test_the_same_command_again_continues_a_cut_short_report(tmp_path, monkeypatch, capsys):
    entries = {"cut": ("tests.toy_experiment", {"steps": 12, "checkpoint_every": 2}),
               "fine": ("tests.toy_experiment", {})}
    monkeypatch.setattr(reproduce, "REGISTRY", entries)
    whole = reproduce.main(["--quick", "--out", str(tmp_path / "whole"), "--quiet"])
    out = tmp_path / "report"
    monkeypatch.setitem(entries, "cut", ("tests.toy_experiment", {"steps": 12, "checkpoint_every": 2, "fail_at": 7}))
    with pytest.raises(SystemExit):  # the entry fails after its checkpoint at step 6; the other finishes
        reproduce.main(["--quick", "--out", str(out), "--quiet"])
    assert (out / "cut" / "checkpoint.ckpt").exists() and not (out / "cut" / "metrics.json").exists()
    monkeypatch.setitem(entries, "cut", ("tests.toy_experiment", {"steps": 12, "checkpoint_every": 2}))
    again = reproduce.main(["--quick", "--out", str(out), "--quiet"])
    assert [(n, c["id"], c["evidence"]) for n, m in again.items() for c in m["claims"]] == \
        [(n, c["id"], c["evidence"]) for n, m in whole.items() for c in m["claims"]]  # as if never cut
    assert again["cut"]["loss"] == whole["cut"]["loss"] and again["cut"]["draws"] == whole["cut"]["draws"]
    header = (out / "REPRODUCTION.md").read_text().splitlines()[2]  # the first command, then the one continuing it
    assert "Entries cut, fine run again on" in header and "Continued from their checkpoints: cut, fine." in header
    assert "FAILED" not in (out / "REPRODUCTION.md").read_text()
    monkeypatch.setitem(entries, "cut", ("tests.toy_experiment", {"steps": 12, "checkpoint_every": 2, "width": 5}))
    with pytest.raises(SystemExit) as exit_:  # a setting that would change its results: refused, nothing run
        reproduce.main(["--quick", "--out", str(out), "--quiet"])
    assert exit_.value.code == 2 and "cut: --width: conflicts with the run" in capsys.readouterr().err


def test_the_reports_time_sums_its_commands_a_killed_one_included(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "REGISTRY", {"a": ("tests.toy_experiment", {}), "b": ("tests.toy_experiment", {})})
    run_entries = reproduce.graph.run_entries

    def killed_after_one_task(entries, *, on_done, **where):
        run_entries(entries[:1], **where, on_done=on_done)
        raise KeyboardInterrupt

    out = tmp_path / "report"
    monkeypatch.setattr(reproduce.graph, "run_entries", killed_after_one_task)
    with pytest.raises(KeyboardInterrupt):
        reproduce.main(["--quick", "--out", str(out), "--quiet", "--workers", "0"])
    monkeypatch.setattr(reproduce.graph, "run_entries", run_entries)
    reproduce.main(["--quick", "--out", str(out), "--quiet", "--workers", "0"])
    sittings = json.loads((out / reproduce.SITTINGS).read_text())
    assert [(s["tasks"], s["finished"]) for s in sittings] == [(1, False), (2, True)]
    assert all(s["seconds"] > 0 and "--quick" in s["command"] for s in sittings)
    header = (out / "REPRODUCTION.md").read_text().splitlines()[2]
    assert (f"took {sum(s['seconds'] for s in sittings):.0f} s of wall-clock time in all, over 2 commands into "
            "its folder (1 cut short") in header
    saved = json.loads((out / reproduce.CLAIMS).read_text())
    tally = {v: [c["verdict"] for c in saved["claims"]].count(v) for v in experiment.VERDICTS}
    line = reproduce.summary_line(saved)  # the sentence the README quotes
    assert line.startswith(f"{len(saved['claims'])} claims: {tally[experiment.REPRODUCED]} REPRODUCED, ")
    assert f"; {sum(s['seconds'] for s in sittings) / 3600:.1f} h of wall-clock time on " in line


def test_a_command_keeps_its_time_between_tasks_and_stops_writing_when_closed(tmp_path):
    sittings = reproduce.Sittings(tmp_path, ["--quick"], every=0.05)
    time.sleep(0.5)  # no task gathered: a killed command still counts up to its last write
    written = json.loads((tmp_path / reproduce.SITTINGS).read_text())
    assert written[-1]["tasks"] == 0 and written[-1]["seconds"] > 0.2
    sittings.close(finished=False)
    closed = (tmp_path / reproduce.SITTINGS).read_text()
    time.sleep(0.2)
    assert (tmp_path / reproduce.SITTINGS).read_text() == closed and not json.loads(closed)[-1]["finished"]


def test_rejudge_refuses_a_folder_without_a_report_and_flags_that_would_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(["--rejudge", str(tmp_path)])
    assert exit_.value.code == 2 and "holds no reproduction report" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(["--rejudge", str(tmp_path), "--quick"])
    assert exit_.value.code == 2 and "--quick: not with --rejudge" in capsys.readouterr().err


def test_bad_arguments_exit_2_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(["--only", "nothing", "--out", str(tmp_path / "r")])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(["--out", str(tmp_path / "file")])
    assert exit_.value.code == 2 and "not a folder" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_the_quick_report_of_every_experiment(tmp_path):
    results = reproduce.main(["--quick", "--out", str(tmp_path / "r"), "--quiet"])
    assert list(results) == [*reproduce.REGISTRY, "combined"]
    claims = json.loads((tmp_path / "r" / "claims.json").read_text())["claims"]
    assert {c["id"] for c in claims} >= {"D10-LR1", "D10-NORM-L1", "D10-NORM-L3", "D10-NORM-LINF", "OLS-D3", "NOISE-BN-NOREG",
                                           "NORM-COMPARABLE", "NORM-HIGHER-LR"}


def test_the_combined_rule_gives_each_of_its_verdicts():
    from minibn.experiment import claims as C

    from .conftest import assert_rules_decide

    assert_rules_decide({"NORM-HIGHER-LR": (reproduce.decide_higher_lr, [
        (C.REPRODUCED, {"verdicts": {"l1": C.REPRODUCED, "l3": C.REPRODUCED}}),
        (C.PARTLY, {"verdicts": {"l1": C.REPRODUCED, "l3": C.NOT_REPRODUCED}}),
        (C.NOT_REPRODUCED, {"verdicts": {"l1": C.NOT_REPRODUCED, "l3": C.INCONCLUSIVE}}),
        (C.INCONCLUSIVE, {"verdicts": {"l1": C.INCONCLUSIVE}})])})


def _order_tests(p_train, p_test, eq_train=False, eq_test=False):
    return {"tests": {"final_train": {"p_holm": p_train, "equivalence": {"equivalent": eq_train}},
                      "final_test": {"p_holm": p_test, "equivalence": {"equivalent": eq_test}}}}


def test_the_order_rule_gives_each_of_its_verdicts():
    from minibn.experiment import claims as C

    from .conftest import assert_rules_decide

    assert_rules_decide({"BN-ORDER": (reproduce.decide_order, [
        (C.REPRODUCED, _order_tests(0.01, 0.02)), (C.PARTLY, _order_tests(0.01, 0.4)),
        (C.NOT_REPRODUCED, _order_tests(0.5, 0.6, True, True)), (C.INCONCLUSIVE, _order_tests(0.5, 0.6, True)),
        (C.INCONCLUSIVE, {"verdicts_before_after": {}})])})


def test_the_order_claim_pairs_the_verdicts_and_tests_the_accuracies_seed_by_seed():
    from minibn.experiment import claims as C

    def run(verdicts, train, test):
        return {"claims": [{"id": i, "verdict": v} for i, v in verdicts.items()],
                "summary": {"bn": {"final_train": train, "final_test": test}}}

    results = {"smoothness": run({"A": C.REPRODUCED, "B": C.PARTLY, "C": C.REPRODUCED, "D": C.REPRODUCED},
                                 [0.90, 0.91, 0.92, 0.93], [0.80, 0.82, 0.81, 0.83]),
               "smoothness_after_relu": run({"A": C.REPRODUCED, "B": C.NOT_REPRODUCED, "C": C.INCONCLUSIVE},
                                            [0.95, 0.97, 0.96, 0.99], [0.8001, 0.8203, 0.8098, 0.8302])}
    e = reproduce.bn_order(results)["evidence"]
    assert e["verdicts_before_after"] == {"smoothness/A": [C.REPRODUCED, C.REPRODUCED],
                                          "smoothness/B": [C.PARTLY, C.NOT_REPRODUCED],
                                          "smoothness/C": [C.REPRODUCED, C.INCONCLUSIVE]}
    assert (e["survived"], e["changed"], e["undecided"]) == (["smoothness/A"], ["smoothness/B"], ["smoothness/C"])
    train, test = e["tests"]["final_train"], e["tests"]["final_test"]
    assert train["difference"][0] == pytest.approx(0.0525) and train["p_holm"] < 0.05
    assert test["equivalence"]["equivalent"] and test["p_holm"] > 0.05
    assert reproduce.bn_order(results)["verdict"] == C.PARTLY
    assert reproduce.bn_order({"smoothness": results["smoothness"]}) is None


def test_the_report_on_a_local_dask_cluster_equals_the_one_in_this_process(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed", reason="Dask needs dask.distributed (pip install -e '.[dask]')")
    monkeypatch.setattr(reproduce, "REGISTRY", {"grid": ("tests.toy_grid", {}), "toy": ("tests.toy_experiment", {})})
    monkeypatch.setattr(reproduce, "AUTHOR_ENTRIES", {"depth": ("mnist_depth10", {**TINY, "lr": 3.0, "steps": 20})})
    monkeypatch.setattr(reproduce, "AUTHOR_SEEDS", {"tests.toy_experiment": 2})
    here = reproduce.main(["--protocol", "author", "--out", str(tmp_path / "here"), "--workers", "0", "--quiet"])
    there = reproduce.main(["--protocol", "author", "--out", str(tmp_path / "dask"), "--dask", "local:2", "--quiet"])
    assert [(n, c["id"], c["verdict"], c["evidence"]) for n, m in here.items() for c in m["claims"]] == \
        [(n, c["id"], c["verdict"], c["evidence"]) for n, m in there.items() for c in m["claims"]]
    assert there["toy"]["seeds"] == [0, 1] and (tmp_path / "dask" / "toy" / "seed=1" / "metrics.json").is_file()
    for argv, said in ((["--workers", "-1"], "--workers: must be 0 or more"),
                       (["--dask", "4"], "--dask: expected local:N"),
                       (["--workers", "2", "--dask", "local:2"], "not allowed with argument")):
        with pytest.raises(SystemExit) as exit_:
            reproduce.main([*argv, "--out", str(tmp_path / "x")])
        assert exit_.value.code == 2 and said in capsys.readouterr().err
