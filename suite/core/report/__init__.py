"""report: a study's HTML page, summary.json and parquet tables; the index of all studies.

Pages are jinja2 templates (autoescaped: a study's own text can never inject markup)
with every figure embedded as a data URI, so a page opens anywhere with no network.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from suite.core import analysis, frames
from suite.core.evaluation import RunInfo, StudyResult
from suite.core.replication import agreement
from suite.core.report import figures
from suite.core.report.sections import study_sections
from suite.core.step_curve import steps_to_target
from suite.core.study import PROFILE_NAMES, Profile, Study
from suite.core.verdicts import ALPHA as CHANCE_ALPHA
from suite.core.verdicts import DECIDED

_ENV = Environment(loader=PackageLoader("suite.core.report", "templates"), autoescape=select_autoescape(["html"]))


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and not math.isfinite(x))


def format_number(x, digits: int = 3) -> str:
    if _missing(x):
        return "–"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{digits}f}"  # counts (parameters, FLOPs) read as counts


_ENV.filters["num"] = format_number


def badge(verdict: str | None) -> Markup:
    """A verdict as a coloured label (grey for "not judged" and anything unknown)."""
    if not verdict:
        return Markup("")
    css = verdict if verdict in (*analysis.VERDICTS,) else "none"
    return Markup('<span class="badge {}">{}</span>').format(css, verdict)


_ENV.filters["badge"] = badge


def table_html(frame: pd.DataFrame, float_format: str = "{:.3f}") -> Markup:
    """A frame as an escaped HTML table (pandas escapes cell text)."""
    if frame.empty:
        return Markup("<p class='muted'>(none)</p>")
    return Markup(frame.to_html(index=False, classes="data", border=0, na_rep="–", escape=True,
                                float_format=float_format.format))


def _interval(low, high) -> str:
    if _missing(low) or _missing(high):  # one seed gives (-inf, inf)
        return "–"
    return f"[{low:.3f}, {high:.3f}]"


def _effect_label(claim) -> str:
    """What a budget curve's effect measures: the metric, or for a ratio claim its log ratio
    against the stated ratio."""
    return f"log({claim.metric} ratio / {claim.ratio:g})" if claim.ratio is not None else claim.metric


def _readable_arms(frame: pd.DataFrame) -> pd.DataFrame:
    """The per-arm table as a reader wants it: parameter counts as whole numbers, step times in
    milliseconds (seconds at 3 decimals read 0.001 for every MLP), and narrow enough for the page:
    the test interval in one column, and headers with spaces, which wrap (snake_case does not)."""
    frame = frame.copy()
    if "parameters" in frame:
        frame["parameters"] = frame["parameters"].round().astype("Int64")
    if "step_seconds" in frame:
        frame = frame.rename(columns={"step_seconds": "step ms"})
        frame["step ms"] = 1000 * frame["step ms"]
    if {"test_accuracy", "test_accuracy_low", "test_accuracy_high"} <= set(frame):
        interval = [_interval(low, high) for low, high in zip(frame.pop("test_accuracy_low"),
                                                                frame.pop("test_accuracy_high"))]
        frame.insert(frame.columns.get_loc("test_accuracy") + 1, "test accuracy 95% CI", interval)
    return frame.rename(columns=lambda name: name.replace("_", " "))


def csv_link(frame: pd.DataFrame, filename: str) -> Markup:
    """A download link carrying the table as an embedded CSV (no request leaves the page)."""
    payload = base64.b64encode(frame.to_csv(index=False).encode()).decode()
    return Markup(f'<a class="csv" download="{filename}" href="data:text/csv;base64,{payload}">download CSV</a>')


def records_digest(study: Study, records: list[dict], run: RunInfo | None = None) -> str:
    """Identifies what a report was drawn from: the study file's content, every record, and
    the run's seed block with the other blocks' verdicts (`run`)."""
    import hashlib

    digest = hashlib.sha256(Path(study.path).read_bytes() if study.path else b"")
    for record in sorted(records, key=lambda r: r["key"]):
        digest.update(json.dumps(record, sort_keys=True, default=str).encode())
    digest.update(json.dumps(asdict(run) if run else {}, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:20]


def load_current_summary(out_dir: str | Path, result: StudyResult, profile: Profile) -> dict | None:
    """The existing summary when it was drawn from exactly these records and blocks, else None."""
    path = Path(out_dir) / result.study.name / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fresh = (summary.get("records_digest") == records_digest(result.study, result.records, result.run)
             and summary.get("profile") == profile.name)
    return summary if fresh and (path.parent / "index.html").exists() else None


def build_study_report(result: StudyResult, profile: Profile, out_dir: str | Path, run_seconds: float,
                       dataset_info: dict) -> dict:
    """Write <out>/<study>/{index.html, summary.json, *.parquet} from a judged study
    (suite.core.evaluation); return the summary, which serialises `result`."""
    study, run = result.study, result.run
    judge_seeds = set(run.judge_seeds) if run.judge_seeds else None
    out = Path(out_dir) / study.name
    out.mkdir(parents=True, exist_ok=True)
    factors = list(study.factors)
    trials, epochs, layers, verdicts, tuning = result.trials, result.epochs, result.layers, result.verdicts, result.tuning
    epochs_sel = result.selected_epochs
    this_run = result.verdict_words()
    replication = [{"label": other.label, "verdicts": other.verdicts, **agreement(this_run, other.verdicts)}
                   for other in run.others]
    summary_table = frames.arm_summary(trials)
    failed = trials.loc[trials["status"] != "ok", ["arm", *[c for c in trials if c.startswith("tuned_")],
                                                    "seed", "status", "message"]]
    provenance = result.records[0].get("provenance", {}) if result.records else {}
    generated = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()

    summary = {
        "study": study.name, "title": study.title, "question": study.question, "profile": profile.name,
        "budget": {"train_examples": profile.train_examples, "epochs": profile.epochs,
                   **_seed_counts(trials)},
        "generated": generated, "wall_seconds": round(run_seconds, 2),
        "trial_seconds": round(float(trials["wall_seconds"].sum()), 1) if "wall_seconds" in trials else None,
        "trials": frames.status_counts(trials),
        "chance": {"alpha": CHANCE_ALPHA, "claims": sum(v.verdict != analysis.NOT_JUDGED for v in verdicts),
                   "decided": sum(v.verdict in DECIDED for v in verdicts),
                   "decided_after_holm": sum(v.holm_verdict in DECIDED for v in verdicts)},
        "claims": [{**v.as_dict(), "sgd_steps": _sgd_steps(v.claim, trials)} for v in verdicts] + [
            {"id": c.id, "text": c.text, "verdict": "not judged", "reason": c.reason, "effect": None,
             "ci": [None, None], "n": 0} for c in study.not_judged],
        "facts": result.facts,
        "reference": result.reference,
        "tuned": frames.chosen_values(tuning, study), "tuned_at_edge": frames.tuned_at_edge(tuning, study),
        "seed_block": run.label, "confirmation": bool(judge_seeds), "replication": replication,
        "provenance": provenance,
        "records_digest": records_digest(study, result.records, run),
    }
    text = json.dumps(summary, indent=2, default=str)
    (out / "summary.json").write_text(text, encoding="utf-8")
    # kept per profile too, so the index can show a claim's verdict at every budget side by side
    (out / f"summary-{profile.name}.json").write_text(text, encoding="utf-8")
    trials.to_parquet(out / "trials.parquet", index=False)
    if not epochs.empty:
        epochs.to_parquet(out / "epochs.parquet", index=False)
    if not layers.empty:
        layers.to_parquet(out / "layers.parquet", index=False)

    claims_view = []
    for verdict in verdicts:
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
    targets = _targets_table(study, trials, epochs)
    summary_cols = ["arm", "trials", "ok", "test_accuracy", "test_accuracy_low", "test_accuracy_high",
                    "val_accuracy", "train_accuracy", "train_loss", "parameters", "step_seconds"]
    page = _ENV.get_template("study.html").render(
        study=study, profile=profile, summary=summary, claims=claims_view, dataset=dataset_info,
        tuned_keys=list(study.tuned), replication=replication,
        curves=figures.learning_curves(epochs_sel, factors),
        final=figures.final_comparison(trials, factors),
        targets=table_html(targets),
        targets_csv=csv_link(targets, f"{study.name}-epochs-to-target.csv"),
        extras=study_sections(trials, epochs, study, layers),
        arm_table=table_html(_readable_arms(summary_table[[c for c in summary_cols if c in summary_table]])),
        arm_csv=csv_link(summary_table, f"{study.name}-arms.csv"),
        tuning_table=table_html(frames.tuning_overview(tuning, study)),
        tuning_csv=csv_link(tuning, f"{study.name}-tuning.csv") if not tuning.empty else "",
        verdicts_csv=csv_link(pd.DataFrame([{**c, "ci_low": c["ci"][0], "ci_high": c["ci"][1]}
                                            for c in summary["claims"]]).drop(columns="ci", errors="ignore"),
                              f"{study.name}-verdicts.csv"),
        failed_table=table_html(failed),
        failed_csv=csv_link(failed, f"{study.name}-failed-trials.csv") if not failed.empty else "",
        provenance=provenance,
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


def _sgd_steps(claim, trials: pd.DataFrame) -> list[int] | None:
    """[fewest, most] SGD steps among the judged trials a claim compares: the budget its verdict holds
    for, as the training loop counted it (multi-phase procedures included)."""
    if "sgd_steps" not in trials or trials.empty:
        return None
    compared = frames.select_arms(trials, claim.better)
    if claim.worse is not None:
        compared |= frames.select_arms(trials, claim.worse)
    steps = trials.loc[compared & trials["selected"], "sgd_steps"].dropna()
    return [int(steps.min()), int(steps.max())] if not steps.empty else None


def _seed_counts(trials: pd.DataFrame) -> dict:
    """`seeds`: what most arms ran; `most_seeds`: the largest count (a claim's arms may run more)."""
    per_arm = trials.groupby("arm")["seed"].nunique() if not trials.empty else pd.Series(dtype=int)
    if per_arm.empty:
        return {"seeds": 0, "most_seeds": 0}
    return {"seeds": int(per_arm.mode().min()), "most_seeds": int(per_arm.max())}


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
