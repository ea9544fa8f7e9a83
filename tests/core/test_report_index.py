"""The index page: verdicts per stored profile side by side, and decided verdicts against chance."""

import json

from suite.core import report


def _summary(profile: str, verdicts: dict) -> dict:
    return {"study": "s", "title": "S", "question": "q?", "profile": profile, "generated": "now", "trials": {"ok": 4},
            "claims": [{"id": cid, "text": f"claim {cid}", "verdict": v, "holm_verdict": v, "effect": 0.1,
                        "ci": [0.0, 0.2], "n": 3} for cid, v in verdicts.items()]}


def test_index_shows_each_profile_and_counts_decided_verdicts_against_chance(tmp_path):
    page_dir = tmp_path / "s"
    page_dir.mkdir()
    quick = _summary("quick", {"C1": "supported", "C2": "inconclusive"})
    full = _summary("full", {"C1": "equivalent", "C2": "contradicted"})
    (page_dir / "summary-quick.json").write_text(json.dumps(quick))
    (page_dir / "summary-full.json").write_text(json.dumps(full))
    (page_dir / "summary.json").write_text(json.dumps(full))  # the last profile drawn
    html = report.write_index(tmp_path, [("s", "S"), ("never_run", "Never run")]).read_text()
    assert "<th>quick</th>" in html and "<th>full</th>" in html
    row = html[html.index('href="s/index.html#C1"'):]
    row = row[:row.index("</tr>")]
    assert "supported" in row and "equivalent" in row  # C1 at quick and at full, side by side
    assert "2 of 2 judged claims are decided" in html and "about 0.1 would be decided by chance" in html
