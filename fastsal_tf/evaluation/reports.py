"""Evaluation reports: a Table-I style markdown table, CSV and JSON of the means, a per-image CSV.

Files (written atomically: a temporary file in the same folder, then renamed):
- report.md: one row per model (the center-bias baseline included), one column per metric, and the
  protocol in a few lines;
- report.csv: model, description, then each metric's mean and the number of images it used (`<metric>_n`);
- report.json: {"protocol": {...}, "metrics": {name: label}, "models": {row: {"description", "means",
  "counts"}}} (NaN written as null);
- per_image.csv: model, image_id, then the metrics ("nan" where undefined).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import pathlib

from fastsal_tf.common.files import write_atomic
from fastsal_tf.evaluation.core import LABELS, LOWER_IS_BETTER, METRICS
from fastsal_tf.metrics import DatasetScores

REPORT_FILES = ("report.md", "report.csv", "report.json", "per_image.csv")


@dataclasses.dataclass
class EvaluationReport:
    """Scores of every row (model or baseline) on one dataset split, with the protocol used."""

    scores: dict[str, DatasetScores]
    protocol: dict
    descriptions: dict[str, str] = dataclasses.field(default_factory=dict)

    def metric_names(self) -> list[str]:
        present = {name for s in self.scores.values() for name in s.means()}
        return [name for name in METRICS if name in present]


def _number(value: float, digits: int = 3) -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}f}"


def markdown_table(report: EvaluationReport) -> str:
    names = report.metric_names()
    header = ["Model"] + [f"{LABELS[n]} {'↓' if n in LOWER_IS_BETTER else '↑'}" for n in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, scores in report.scores.items():
        means = scores.means()
        lines.append("| " + " | ".join([row] + [_number(means.get(n, math.nan)) for n in names]) + " |")
    return "\n".join(lines)


def markdown(report: EvaluationReport) -> str:
    p = report.protocol
    parts = [f"# Saliency evaluation: {p.get('dataset') or 'dataset'}"
             f"{' / ' + p['split'] if p.get('split') else ''} ({p.get('images')} images)", "",
             markdown_table(report), ""]
    per_row = {}
    for row, scores in report.scores.items():
        counts = scores.counts()
        short = [f"{LABELS[n]} {counts.get(n, 0)}/{len(scores.per_image)}" for n in report.metric_names()
                 if counts.get(n, 0) != len(scores.per_image)]
        if short:
            per_row[row] = ", ".join(short)
    if per_row:
        same = len(set(per_row.values())) == 1 and len(per_row) == len(report.scores)
        lines = [next(iter(per_row.values()))] if same else [f"{row}: {text}" for row, text in per_row.items()]
        parts += ["Means over fewer images (a metric undefined for an image — no fixations, a constant map — "
                  "or not applicable — map-only ground truth has no fixation metrics): " + "; ".join(lines) + ".",
                  ""]
    sources = p.get("ground_truth_sources") or {}
    if sources.get("map"):
        parts += [f"Ground truth: {sources.get('fixations', 0)} images with fixations, {sources['map']} with the "
                  f"dataset's continuous map only.", ""]
    sigma = f", density sigma {p['sigma_px']:g} px" if p.get("sigma_px") else ""
    bias = p.get("center_bias") or {}
    parts += [f"Protocol **{p.get('protocol')}**{sigma}; seed {p.get('seed')}. Metrics: {p.get('metrics')}.",
              f"- Prediction: {p.get('prediction')}.",
              f"- sAUC negatives: {p.get('sauc_negatives')}.",
              f"- Center bias (baseline row and IG baseline): {bias.get('kind', '')}"
              f"{' of ' + str(bias['images']) + ' images' if 'images' in bias else ''}"
              f"{' (' + bias['split'] + ' split)' if bias.get('split') else ''}.",
              "- KLD is lower-is-better; all other metrics higher-is-better. Full protocol: report.json.", ""]
    for row, text in report.descriptions.items():
        parts.append(f"- {row}: {text}")
    return "\n".join(parts).rstrip() + "\n"


def _csv_text(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_json(report: EvaluationReport) -> dict:
    names = report.metric_names()
    return _plain({
        "protocol": report.protocol,
        "metrics": {n: LABELS[n] for n in names},
        "models": {row: {"description": report.descriptions.get(row, ""),
                         "images": len(scores.per_image),
                         "means": {n: scores.means().get(n, math.nan) for n in names},
                         "counts": {n: scores.counts().get(n, 0) for n in names}}
                   for row, scores in report.scores.items()},
    })


def summary_csv(report: EvaluationReport) -> str:
    names = report.metric_names()
    rows = [["model", "description", "images"] + names + [f"{n}_n" for n in names]]
    for row, scores in report.scores.items():
        means, counts = scores.means(), scores.counts()
        rows.append([row, report.descriptions.get(row, ""), len(scores.per_image)]
                    + [repr(float(means.get(n, math.nan))) for n in names] + [counts.get(n, 0) for n in names])
    return _csv_text(rows)


def per_image_csv(report: EvaluationReport) -> str:
    names = report.metric_names()
    rows = [["model", "image_id"] + names]
    for row, scores in report.scores.items():
        for image_id, values in scores.per_image.items():
            rows.append([row, image_id] + [repr(float(values.get(n, math.nan))) for n in names])
    return _csv_text(rows)


def write_reports(report: EvaluationReport, out_dir: str | os.PathLike) -> dict[str, pathlib.Path]:
    """Writes REPORT_FILES into out_dir (created if needed); returns {file name: path}."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {"report.md": markdown(report), "report.csv": summary_csv(report),
             "report.json": json.dumps(to_json(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
             "per_image.csv": per_image_csv(report)}
    paths = {}
    for name, text in texts.items():
        write_atomic(out / name, text)
        paths[name] = out / name
    return paths
