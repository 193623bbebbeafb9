"""The report folder: run files (TREC), report.md and report.json, per-query TSV, failures, PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._files import trec_lines
from ._metrics import PRIMARY

if TYPE_CHECKING:
    from ._runner import EvaluationReport

FIRST_STAGE_FILE = "first-stage.trec"


def run_file_name(label: str) -> str:
    return f"rank1-budget-{label}.trec"


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _p_value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown(report: EvaluationReport) -> str:
    """Quality (first stage and each budget, with the nDCG@10 delta and its paired t-test) and cost tables."""
    options = ", ".join(f"{name}={value!r}" for name, value in report.options.items()) or "server defaults"
    lines = [f"## Rank1 on {report.name}: {report.queries} judged queries, top {report.top_k} reranked ({options})",
             "", _row(["run", *report.measures, f"Δ {PRIMARY}", "p (paired t)"]),
             _row(["---"] + ["---:"] * (len(report.measures) + 2)),
             _row(["first stage", *(_number(report.first_stage.aggregate[m]) for m in report.measures), "", ""])]
    for result in report.budgets:
        lines.append(_row([f"rank1, budget {result.label}",
                           *(_number(result.metrics.aggregate[m]) for m in report.measures),
                           f"{result.comparison.mean_delta:+.4f}", _p_value(result.comparison.p_value)]))
    lines += ["", _row(["run", "documents", "reasoning tokens/doc", "forced %", "truncated %", "wall s", "docs/s",
                        "cached", "failed queries"]),
              _row(["---"] + ["---:"] * 8)]
    for result in report.budgets:
        cost = result.cost
        lines.append(_row([f"rank1, budget {result.label}", str(cost.documents), f"{cost.tokens_per_document:.1f}",
                           f"{cost.forced_pct:.1f}", f"{cost.truncated_pct:.1f}", f"{cost.wall_s:.1f}",
                           _number(cost.docs_per_s, 1), str(cost.cached), str(len(result.failures))]))
    if report.skipped:
        lines += ["", "Left out: " + ", ".join(f"{count} {reason}" for reason, count in report.skipped.items()) + "."]
    for result in report.budgets:
        if result.failures:
            lines.append(f"Budget {result.label}: {len(result.failures)} failed queries kept their first-stage order "
                         f"({', '.join(sorted(result.failures)[:5])}{', …' if len(result.failures) > 5 else ''}).")
    lines += [f"{note}" for note in report.notes]
    return "\n".join(lines) + "\n"


def as_dict(report: EvaluationReport) -> dict[str, Any]:
    """Everything in the report, JSON-able."""
    return {
        "name": report.name, "top_k": report.top_k, "queries": report.queries, "measures": report.measures,
        "options": report.options, "skipped": report.skipped,
        "first_stage": {"metrics": report.first_stage.aggregate, "run_file": str(report.files.get("first_stage", ""))},
        "budgets": [{
            "budget": result.budget, "label": result.label, "metrics": result.metrics.aggregate,
            "delta": {"measure": result.comparison.measure, "mean": result.comparison.mean_delta,
                      "p_value": result.comparison.p_value, "test": result.comparison.test},
            "cost": result.cost.to_dict(), "run_file": str(result.run_file or ""),
            "failed_queries": sorted(result.failures),
        } for result in report.budgets],
        "files": {name: str(path) for name, path in report.files.items()},
    }


def write_report(report: EvaluationReport, out_dir: Path, *, plots: bool = True) -> None:
    """Write the report folder; ``report.files`` names what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    first = out_dir / FIRST_STAGE_FILE
    first.write_text("".join(trec_lines(qid, ranked, "first-stage") for qid, ranked in report.first_stage_run.items()),
                     encoding="utf-8")
    report.files["first_stage"] = first
    for result in report.budgets:
        path = out_dir / run_file_name(result.label)
        path.write_text("".join(trec_lines(qid, ranked, f"rank1-{result.label}") for qid, ranked in result.run.items()),
                        encoding="utf-8")
        result.run_file = path
        report.files[f"run_{result.label}"] = path
    per_query = out_dir / "per_query.tsv"
    header = ["query_id", f"first_stage_{PRIMARY}", *(f"budget_{r.label}_{PRIMARY}" for r in report.budgets),
              *(f"budget_{r.label}_delta" for r in report.budgets)]
    rows = ["\t".join(header)]
    for qid in sorted(report.first_stage.per_query):
        base = report.first_stage.per_query[qid][PRIMARY]
        values = [r.metrics.per_query.get(qid, {}).get(PRIMARY, float("nan")) for r in report.budgets]
        rows.append("\t".join([qid, f"{base:.6f}", *(f"{v:.6f}" for v in values),
                               *(f"{v - base:+.6f}" for v in values)]))
    per_query.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report.files["per_query"] = per_query
    failures = [{"budget": r.budget, "query_id": qid, "error": str(error), "type": type(error).__name__,
                 "status": error.status, "request_id": error.request_id}
                for r in report.budgets for qid, error in sorted(r.failures.items())]
    if failures:
        path = out_dir / "failures.jsonl"
        path.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in failures), encoding="utf-8")
        report.files["failures"] = path
    if plots:
        _plots(report, out_dir)
    markdown_path = out_dir / "report.md"
    report.files["markdown"] = markdown_path
    report.files["json"] = out_dir / "report.json"
    markdown_path.write_text(markdown(report), encoding="utf-8")
    (out_dir / "report.json").write_text(json.dumps(as_dict(report), indent=2) + "\n", encoding="utf-8")


def _plots(report: EvaluationReport, out_dir: Path) -> None:
    """nDCG@10 against reasoning tokens per document (the test-time-compute curve) and sorted per-query deltas."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report.notes.append("Plots skipped: matplotlib is not installed (pip install 'rank1-client[evaluate]').")
        return
    figure, axes = plt.subplots(figsize=(6, 4))
    points = sorted((r.cost.tokens_per_document, r.metrics.aggregate[PRIMARY], r.label) for r in report.budgets)
    axes.plot([x for x, _, _ in points], [y for _, y, _ in points], marker="o", label="Rank1")
    for x, y, label in points:
        axes.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes.axhline(report.first_stage.aggregate[PRIMARY], color="grey", linestyle="--", label="first stage")
    axes.set_xlabel("reasoning tokens per document (mean)")
    axes.set_ylabel(PRIMARY)
    axes.set_title(f"{report.name}: {PRIMARY} vs reasoning budget")
    axes.legend()
    figure.tight_layout()
    curve = out_dir / "ndcg_vs_budget.png"
    figure.savefig(curve, dpi=120)
    plt.close(figure)
    report.files["plot_budget"] = curve

    figure, axes = plt.subplots(figsize=(7, 4))
    for result in report.budgets:
        deltas = sorted(result.comparison.deltas.values(), reverse=True)
        axes.bar(range(len(deltas)), deltas, alpha=0.6, label=f"budget {result.label}")
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_xlabel("queries (sorted by delta)")
    axes.set_ylabel(f"Δ {PRIMARY} (Rank1 − first stage)")
    axes.set_title(f"{report.name}: per-query {PRIMARY} change")
    axes.legend()
    figure.tight_layout()
    delta = out_dir / "per_query_delta.png"
    figure.savefig(delta, dpi=120)
    plt.close(figure)
    report.files["plot_delta"] = delta
