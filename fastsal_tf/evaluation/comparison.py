"""Comparing training conditions on the same images: seed-averaged per-image scores, per-image standard
errors and paired differences (the distillation ablation's table).

scores: {run name: {image id: {metric: value}}}, e.g. read from per_image.csv; every run scores the same
images. A condition is a list of runs (its seeds).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence

import numpy as np

from fastsal_tf.evaluation.core import LABELS


def read_per_image(path: str | os.PathLike, metrics: Sequence[str] = ("cc", "nss", "auc_judd", "kld"),
                   row: str | None = None) -> dict[str, dict[str, float]]:
    """{image id: {metric: value}} of one row of an evaluation's per_image.csv (default: the first row that
    is not the center bias). Raises ValueError naming the file when the row or a metric is missing."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    names = [r["model"] for r in rows if r["model"] != "center bias"] if row is None else [row]
    chosen = [r for r in rows if names and r["model"] == names[0]]
    if not chosen or any(m not in chosen[0] for m in metrics):
        raise ValueError(f"{path}: no row {row or 'besides the center bias'} with the metrics {list(metrics)}")
    return {r["image_id"]: {m: float(r[m]) for m in metrics} for r in chosen}


def per_image(scores: Mapping, runs: Sequence[str], metric: str) -> np.ndarray:
    """(images,) each image's score averaged over `runs`, images in the first run's order."""
    images = list(scores[runs[0]])
    return np.array([np.mean([scores[run][image][metric] for run in runs]) for image in images])


def standard_error(values) -> float:
    """Standard error of the mean: std (ddof=1) / sqrt(n)."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.std(values, ddof=1) / np.sqrt(len(values)))


def condition_table(scores: Mapping, conditions: Mapping[str, Sequence[str]], baseline: str,
                    metrics: Sequence[str] = ("cc", "nss", "auc_judd", "kld")) -> str:
    """Markdown table, one row per condition: each metric's seed-averaged mean ± per-image standard error,
    the paired CC difference to the `baseline` condition (mean ± standard error of the per-image
    differences), and each run's mean CC."""
    header = (["condition", "runs"] + [f"{LABELS[m]} ± SE" for m in metrics]
              + [f"Δ CC vs {baseline} ± paired SE", "CC per run"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = per_image(scores, conditions[baseline], "cc")
    for condition, runs in conditions.items():
        cells = [condition, str(len(runs))]
        for metric in metrics:
            values = per_image(scores, runs, metric)
            cells.append(f"{values.mean():.3f} ± {standard_error(values):.3f}")
        delta = per_image(scores, runs, "cc") - base
        cells.append("—" if condition == baseline else f"{delta.mean():+.4f} ± {standard_error(delta):.4f}")
        cells.append(", ".join(f"{np.mean([v['cc'] for v in scores[run].values()]):.3f}" for run in runs))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
