"""Evaluation of saliency predictions on datasets: the `evaluate` command's library.

    from fastsal_tf.evaluation import evaluate, write_reports, run_evaluation
    scores = evaluate("maps/", examples, protocol="mit", sigma_px=24.0)      # DatasetScores
    report = run_evaluation("default", "osie", "../shared/data/osie", split="validation")
    write_reports(report, "eval_out")

Modules: core (evaluate, evaluate_many, protocols), ground_truth (fixation maps, densities, sAUC negatives,
center bias), sources (map folders, functions, models), authors (the FastSal eval.py post-processing in
numpy), reports (markdown / CSV / JSON writers), run (dataset + model names → report),
comparison (conditions × seeds on the same images: per-image standard errors, paired differences).
"""

from fastsal_tf.evaluation.authors import authors_map, blur_5x5, resize_area
from fastsal_tf.evaluation.core import (LABELS, METRICS, PROTOCOLS, EvaluationWarning, describe_protocol, evaluate,
                                        evaluate_many)
from fastsal_tf.evaluation.ground_truth import image_ground_truth, mean_density
from fastsal_tf.evaluation.reports import REPORT_FILES, EvaluationReport, markdown, markdown_table, write_reports
from fastsal_tf.evaluation.run import run_evaluation
from fastsal_tf.evaluation.sources import FixedMap, FunctionSource, MapDirectory, ModelSource, read_map_file
from fastsal_tf.imaging import centered_gaussian

__all__ = ["LABELS", "METRICS", "PROTOCOLS", "REPORT_FILES", "EvaluationReport", "EvaluationWarning", "FixedMap",
           "FunctionSource", "MapDirectory", "ModelSource", "authors_map", "blur_5x5", "centered_gaussian",
           "describe_protocol", "evaluate", "evaluate_many", "image_ground_truth", "markdown", "markdown_table",
           "mean_density", "read_map_file", "resize_area", "run_evaluation", "write_reports"]
