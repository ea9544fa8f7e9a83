"""report: a study's HTML page and the index of all studies.

Pages are jinja2 templates (autoescaped: a study's own text can never inject markup)
with every figure embedded as a data URI, so a page opens anywhere with no network.
What is stored beside a page is in `summary`; the pieces a page is made of are in `html`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from suite.core import analysis, frames
from suite.core.evaluation import StudyResult
from suite.core.report import figures
from suite.core.report.html import badge, csv_link, format_number, readable_arms, table_html
from suite.core.report.sections import study_sections
from suite.core.report.summary import load_current_summary, stored_wall_seconds, study_summary, write_study_files
from suite.core.step_curve import steps_to_target
from suite.core.study import PROFILE_NAMES, Profile, Study
from suite.core.verdicts import ALPHA as CHANCE_ALPHA
from suite.core.verdicts import DECIDED

__all__ = ["build_study_report", "load_current_summary", "stored_wall_seconds", "write_index"]

_ENV = Environment(loader=PackageLoader("suite.core.report", "templates"), autoescape=select_autoescape(["html"]))
_ENV.filters["num"] = format_number
_ENV.filters["badge"] = badge


def _effect_label(claim) -> str:
    """What a budget curve's effect measures: the metric, or for a ratio claim its log ratio
    against the stated ratio."""
    return f"log({claim.metric} ratio / {claim.ratio:g})" if claim.ratio is not None else claim.metric


def build_study_report(result: StudyResult, profile: Profile, out_dir: str | Path, run_seconds: float,
                       dataset_info: dict) -> dict:
    """Write <out>/<study>/{index.html, summary.json, *.parquet} from a judged study
    (suite.core.evaluation); return the summary, which serialises `result`."""
    study, trials, tuning = result.study, result.trials, result.tuning
    out = Path(out_dir) / study.name
    out.mkdir(parents=True, exist_ok=True)
    summary = study_summary(result, profile, run_seconds)
    write_study_files(out, summary, result)
    factors = list(study.factors)
    summary_table = frames.arm_summary(trials)
    failed = trials.loc[trials["status"] != "ok", ["arm", *[c for c in trials if c.startswith("tuned_")],
                                                    "seed", "status", "message"]]

    claims_view = []
    for verdict in result.verdicts:
        better = _arms_named(trials, verdict.claim.better)
        if verdict.claim.worse is None:
            worse = f"the fixed value {verdict.claim.than:g}"
        else:
            worse = _arms_named(trials, verdict.claim.worse)
        claims_view.append({"v": verdict, "better": better, "worse": worse,
                            "figure": figures.claim_pairs(verdict.pairs, verdict.claim.metric),
                            # the margin in the effect's units (a ratio claim's effect is a log ratio)
                            "budget_curve": figures.budget_curve(verdict.by_epoch, analysis.judged_margin(verdict.claim),
                                                                 verdict.claim.test, _effect_label(verdict.claim),
                                                                 # a claim judged at step 0 keeps that point in view
                                                                 fit_later=verdict.claim.epoch != 0)})
    targets = _targets_table(study, trials, result.epochs)
    summary_cols = ["arm", "trials", "ok", "test_accuracy", "test_accuracy_low", "test_accuracy_high",
                    "val_accuracy", "train_accuracy", "train_loss", "parameters", "step_seconds"]
    page = _ENV.get_template("study.html").render(
        study=study, profile=profile, summary=summary, claims=claims_view, dataset=dataset_info,
        tuned_keys=list(study.tuned), replication=summary["replication"],
        curves=figures.learning_curves(result.selected_epochs, factors),
        final=figures.final_comparison(trials, factors),
        targets=table_html(targets),
        targets_csv=csv_link(targets, f"{study.name}-epochs-to-target.csv"),
        extras=study_sections(trials, result.epochs, study, result.layers),
        arm_table=table_html(readable_arms(summary_table[[c for c in summary_cols if c in summary_table]])),
        arm_csv=csv_link(summary_table, f"{study.name}-arms.csv"),
        tuning_table=table_html(frames.tuning_overview(tuning, study)),
        tuning_csv=csv_link(tuning, f"{study.name}-tuning.csv") if not tuning.empty else "",
        verdicts_csv=csv_link(pd.DataFrame([{**c, "ci_low": c["ci"][0], "ci_high": c["ci"][1]}
                                            for c in summary["claims"]]).drop(columns="ci", errors="ignore"),
                              f"{study.name}-verdicts.csv"),
        failed_table=table_html(failed),
        failed_csv=csv_link(failed, f"{study.name}-failed-trials.csv") if not failed.empty else "",
        provenance=summary["provenance"],
    )
    (out / "index.html").write_text(page, encoding="utf-8")
    return summary


def _targets_table(study: Study, trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """Per arm and speed claim: mean epochs or SGD steps to the claim's target, and how often it
    was not reached."""
    rows = []
    for claim in study.claims:
        if claim.metric == "epochs_to_target" and not epochs.empty:
            budget, unit = int(epochs["epoch"].max()), "epochs"
            reached = analysis.epochs_to_target(epochs, claim.target).rename("time")
            chosen = trials[trials["selected"]].merge(reached, left_on="key", right_index=True, how="left")
            chosen["hit"] = chosen["time"] <= budget
        elif claim.metric == "steps_to_target" and "step_curve" in trials:
            unit, chosen = "steps", trials[trials["selected"]].copy()
            chosen["time"] = chosen["step_curve"].map(lambda c, target=claim.target: steps_to_target(c, target))
            # censored values lie past the last window's end
            chosen["hit"] = chosen["time"] <= chosen["step_curve"].map(lambda c: c["ends"][-1] if c else -1)
        else:
            continue
        for arm, group in chosen.groupby("arm", sort=False):
            hit = group["hit"]
            rows.append({"claim": claim.id, "target": f"{claim.target['metric']} {claim.target['value']}",
                         "arm": arm, "seeds": len(group), "not reached": int((~hit).sum()),
                         f"mean {unit} (reached only)": group.loc[hit, "time"].mean() if hit.any() else None})
    return pd.DataFrame(rows)


def _arms_named(trials: pd.DataFrame, selector: dict) -> str:
    return " + ".join(dict.fromkeys(trials.loc[frames.select_arms(trials, selector), "arm"]))


def write_index(out_dir: str | Path, known_studies: list[tuple[str, str]]) -> Path:
    """reports/index.html: every study, its claims and verdicts; studies without results listed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, title in known_studies:
        path = out / name / "summary.json"
        summary = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        by_profile = {}  # profile -> claim id -> verdict, for the profiles stored
        for profile in PROFILE_NAMES:
            stored = out / name / f"summary-{profile}.json"
            if stored.exists():
                by_profile[profile] = {c["id"]: c["verdict"] for c in json.loads(stored.read_text(encoding="utf-8"))["claims"]}
        entries.append({"name": name, "title": title, "summary": summary, "by_profile": by_profile})
    judged = [c for e in entries if e["summary"] for c in e["summary"]["claims"] if c["verdict"] != "not judged"]
    chance = {"claims": len(judged), "decided": sum(c["verdict"] in DECIDED for c in judged),
              "holm": sum(c.get("holm_verdict") in DECIDED for c in judged),
              "expected": CHANCE_ALPHA * len(judged), "alpha": CHANCE_ALPHA}
    page = _ENV.get_template("index.html").render(entries=entries, chance=chance)
    (out / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"
