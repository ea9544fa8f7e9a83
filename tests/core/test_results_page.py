"""The results page says what the stored summaries say: every study and claim, read back from the
markdown it wrote and compared field by field with the summary.json it was written from."""

from __future__ import annotations

import json

from suite import cli
from suite.core.report.results_page import (
    OUTCOMES,
    gpu_scale_section,
    outcome,
    read_summaries,
    render_results_page,
    replication_section,
)


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of every row of each table whose header line starts with `header`."""
    rows, inside = [], False
    for line in text.splitlines():
        if line.startswith(header):
            inside = True
            continue
        if inside and line.startswith("|---"):
            continue
        if inside and line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        else:
            inside = False
    return rows


def test_the_page_holds_every_claim_of_the_summaries_it_read(tmp_path, studies_dir, capsys):
    reports = tmp_path / "reports"
    assert cli.main(["--study", "tiny", "--studies-dir", str(studies_dir), "--results", str(tmp_path / "results"),
                     "--out", str(reports), "--profile", "quick", "--executor", "inline", "--quiet"]) == 0
    page = tmp_path / "docs" / "results.md"
    assert cli.main(["--results-page", str(page), "--out", str(reports)]) == 0
    text = page.read_text()
    (summary,) = read_summaries(reports)
    assert summary == json.loads((reports / "tiny" / "summary.json").read_text())

    (study_row,) = _table_rows(text, "| study |")
    counts = {word: sum(outcome(c) == word for c in summary["claims"]) for word in OUTCOMES}
    assert study_row[1:3] == ["quick", str(sum(summary["trials"].values()))]
    assert study_row[4:] == [str(counts[o]) for o in OUTCOMES]
    assert f"- Commit of the runs: {summary['provenance']['git_commit']}" in text
    assert summary["provenance"]["cpu"] in text  # the machine, with its vector extensions

    claims = {row[0]: row for row in _table_rows(text, "| claim |")}
    assert claims.keys() == {c["id"] for c in summary["claims"]}
    for claim in summary["claims"]:
        row = claims[claim["id"]]
        low, high = claim["ci"]
        assert row[1] == claim["verdict"]  # the tiny study lists no claim it cannot measure
        assert float(row[2]) == round(claim["effect"], 3)
        assert [float(x) for x in row[3].strip("[]").split(",")] == [round(low, 3), round(high, 3)]
        assert int(row[4]) == claim["n"]
        # 512 training examples in batches of 64, 2 epochs: 16 SGD steps, as the training loop counted them
        assert claim["sgd_steps"] == [16, 16] and row[5] == "16"
        assert row[6] == "–"  # no claim about trained nets: no check at half the budget
        assert row[7] == claim["needs"]


def test_the_verdict_at_half_the_budget_names_its_seeds_where_it_stopped_at_an_earlier_look():
    from suite.core.report.results_page import _half_budget

    half = {"verdict": "supported", "effect": 0.12, "n": 3}
    earlier = {"seeds": 8, "half_seeds": 3}
    assert _half_budget({"budget_check": {"half": half}, "sequential": earlier}) == "supported (+0.120, 3 seeds)"
    # a pair lost at one budget (a diverged run) is no earlier look; nor is a design without looks
    assert _half_budget({"n": 8, "budget_check": {"half": half}, "sequential": {"seeds": 8, "half_seeds": 8}}) \
        == "supported (+0.120)"
    assert _half_budget({"n": 8, "budget_check": {"half": half}}) == "supported (+0.120)"
    assert _half_budget({"budget_check": None}) == "–"


def test_claims_that_need_a_gpu_at_their_papers_scale_are_listed_with_the_reason():
    summaries = [{"study": "depth", "claims": [
        {"id": "R1", "verdict": "supported", "gpu_scale": "CIFAR-10, 56 layers: about 100 hours on 2 cores"},
        {"id": "R3", "verdict": "inconclusive", "gpu_scale": ""}]}]
    rows = _table_rows("\n".join(gpu_scale_section(summaries)), "| paper-scale claim |")
    assert rows == [["R1", "depth", "supported", "CIFAR-10, 56 layers: about 100 hours on 2 cores"]]
    assert gpu_scale_section([{"study": "init", "claims": [{"id": "I2", "verdict": "supported"}]}]) == []


def test_a_study_run_on_a_fresh_block_shows_how_many_verdicts_agree_and_each_claims_other_verdict():
    summary = {"study": "init", "seed_block": "seeds 2-17", "replication": [
        {"label": "tuning run, seeds 0-1", "tuning": True, "verdicts": {"I2": "contradicted"},
         "decided_both": 1, "agree": 0, "flips": ["I2"]},
        {"label": "seeds 20-35", "tuning": False, "verdicts": {"I2": "supported", "I3": "equivalent"},
         "decided_both": 2, "agree": 1, "flips": ["I3"]}]}
    rows = _table_rows("\n".join(replication_section([summary, {"study": "depth"}])), "| study |")
    assert rows == [["init", "seeds 2-17", "seeds 20-35", "2", "1", "I3"]]  # the tuning run is no replication
    assert replication_section([{"study": "depth", "replication": []}]) == []
    claims = [{"id": "I2", "verdict": "supported", "ci": [0.1, 0.2], "effect": 0.15, "n": 3},
              {"id": "I4", "verdict": "inconclusive", "ci": [None, None], "effect": None, "n": 3}]
    page = render_results_page([{**summary, "title": "Init", "question": "?", "profile": "standard",
                                 "trials": {"ok": 10}, "budget": {}, "claims": claims}])
    fresh = {row[0]: row[-1] for row in _table_rows(page, "| claim |")}
    assert fresh == {"I2": "supported", "I4": "–"}
