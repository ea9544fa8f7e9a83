"""End to end, in-process: the CLI runs a tiny study, writes its report, resumes for free."""

import json

import pandas as pd
from conftest import write_study

from suite import cli


def _args(tmp_path, studies_dir, *extra):
    return ["--study", "tiny", "--studies-dir", str(studies_dir), "--results", str(tmp_path / "results"),
            "--out", str(tmp_path / "reports"), "--executor", "inline", "--quiet", *extra]


def test_smoke_run_writes_the_report_and_resumes(tmp_path, studies_dir, capsys):
    assert cli.main(_args(tmp_path, studies_dir, "--profile", "quick")) == 0
    out = capsys.readouterr()
    assert "ran 8 trials" in out.err and "report:" in out.out
    page_dir = tmp_path / "reports" / "tiny"
    summary = json.loads((page_dir / "summary.json").read_text())
    assert summary["study"] == "tiny" and summary["profile"] == "quick"
    assert [c["id"] for c in summary["claims"]] == ["T1", "T2"]
    assert all(c["verdict"] in ("supported", "contradicted", "equivalent", "inconclusive") and c["n"] == 2
               for c in summary["claims"])
    # what a reader needs to weigh each verdict
    for claim in summary["claims"]:
        assert {"margin", "test", "mde", "seeds_needed", "holm_verdict", "by_epoch"} <= set(claim)
        assert claim["holm_verdict"] in ("supported", "contradicted", "equivalent", "inconclusive")
    t2 = summary["claims"][1]  # a probe metric stored at epochs 0, 1, 2: judged at each
    assert [row["epoch"] for row in t2["by_epoch"]] == [0, 1, 2]
    assert {"epoch", "steps", "effect", "ci", "verdict"} <= set(t2["by_epoch"][0])
    assert t2["curve"].startswith("judged at initialisation (step 0)")  # T2 needs: initialisation
    assert (page_dir / "summary-quick.json").exists()
    assert summary["trials"] == {"ok": 8}
    assert set(summary["tuned"]) == {"he_normal / relu", "normal_0.01 / relu"}
    trials = pd.read_parquet(page_dir / "trials.parquet")
    epochs = pd.read_parquet(page_dir / "epochs.parquet")
    assert len(trials) == 8 and set(epochs["epoch"]) == {0, 1, 2}
    html = (page_dir / "index.html").read_text()
    assert "T1" in html and "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    assert html.count('download="') >= 3  # verdicts, arms and tuning tables as CSV
    assert html.index("<h2>Setup</h2>") < html.index("<h2>Verdicts</h2>") < html.index("<h2>Evidence per claim</h2>")
    assert 'href="tiny/index.html"' in (tmp_path / "reports" / "index.html").read_text()

    assert cli.main(_args(tmp_path, studies_dir, "--profile", "quick")) == 0
    err = capsys.readouterr().err
    assert "ran 0 trials, reused 8" in err and "nothing new since the last report" in err
    assert cli.main(_args(tmp_path, studies_dir, "--profile", "quick", "--report-only")) == 0
    assert "8 of 8 trials stored" in capsys.readouterr().err
    rerendered = json.loads((page_dir / "summary.json").read_text())
    assert rerendered["claims"] == summary["claims"] and rerendered["tuned"] == summary["tuned"]
    assert rerendered["wall_seconds"] == summary["wall_seconds"]  # the time of the run that trained, not of drawing


def test_user_text_is_escaped(tmp_path, tiny_study_dict):
    directory = tmp_path / "studies"
    directory.mkdir()
    tiny_study_dict["title"] = "<script>alert(1)</script>"
    tiny_study_dict["claims"][0]["text"] = "<img src=x onerror=alert(2)>"
    write_study(directory, tiny_study_dict)
    assert cli.main(_args(tmp_path, directory, "--profile", "smoke")) == 0
    html = (tmp_path / "reports" / "tiny" / "index.html").read_text()
    index = (tmp_path / "reports" / "index.html").read_text()
    for page in (html, index):
        assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in html


def test_list_shows_every_study_with_its_question(studies_dir, capsys):
    assert cli.main(["--list", "--studies-dir", str(studies_dir)]) == 0
    assert "tiny" in capsys.readouterr().out


def test_missing_dataset_exits_2(tmp_path, tiny_study_dict, capsys):
    directory = tmp_path / "studies"
    directory.mkdir()
    tiny_study_dict["dataset"] = "fashion_mnist"
    write_study(directory, tiny_study_dict)
    code = cli.main(_args(tmp_path, directory, "--profile", "smoke", "--data-dir", str(tmp_path / "nowhere")))
    assert code == 2 and "dataset-fashion-mnist" in capsys.readouterr().err


def test_no_study_named_exits_2(capsys):
    assert cli.main([]) == 2
    assert "--study" in capsys.readouterr().err
