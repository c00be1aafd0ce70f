"""run_evaluation(): a model (or a folder of maps) on a named dataset split → EvaluationReport.

The one code path behind `fastsal evaluate` and `training/evaluate.py`.
"""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Callable, Mapping

from fastsal_tf.evaluation import ground_truth as gt
from fastsal_tf.evaluation.core import as_source, check_protocol, describe_protocol, evaluate_many
from fastsal_tf.evaluation.reports import EvaluationReport
from fastsal_tf.evaluation.sources import CenteredGaussian, FixedMap, MapDirectory, ModelSource
from fastsal_tf.imaging import GAUSSIAN_SD_FRACTION

BASELINE_ROW = "center bias"


def default_sigma(dataset: str) -> float | None:
    """The dataset's density sigma in pixels (DatasetSpec.sigma_px): 1 degree of visual angle where the
    registry knows its pixels per degree, else its authors' blur, else None."""
    from fastsal_tf.data.registry import get_reader

    return get_reader(dataset).sigma_px


def _read(dataset, data_dir, split, split_file):
    from fastsal_tf.data.registry import get_reader, read_dataset

    takes_split_file = get_reader(dataset).split_file
    options = {"split_file": split_file} if split_file and takes_split_file else {}
    if split_file and not takes_split_file:
        raise ValueError(f"a split file does not apply to the {dataset} dataset")
    return read_dataset(dataset, data_dir, split, **options).examples


def center_bias(dataset: str, data_dir, split: str | None, sigma_px: float | None, baseline_split: str = "auto",
                split_file=None):
    """(baseline, info): the mean training density of baseline_split, or a centred Gaussian ("none").

    "auto" means the dataset's "train" split when it has one (also when "train" is the evaluated split: the
    baseline is then in-sample, and info says so), else the centred Gaussian."""
    from fastsal_tf.data.registry import get_reader

    spec = get_reader(dataset)
    if baseline_split == "auto":
        baseline_split = "train" if "train" in spec.splits else "none"
    if baseline_split in ("none", "gaussian"):
        return CenteredGaussian(), {"kind": "centred Gaussian", "sd_fraction": GAUSSIAN_SD_FRACTION}
    examples = _read(dataset, data_dir, baseline_split, split_file)
    values, info = gt.mean_density(examples, sigma_px)
    info["split"] = baseline_split
    if baseline_split == split:
        info["note"] = "in-sample: computed on the evaluated split"
    return FixedMap(values, BASELINE_ROW), info


def model_source(model, protocol: str, *, input_size=None, blur: float = 0.0):
    """(source, row name, description) for a model spec or a folder of maps. blur: the predictor's Gaussian
    blur (sigma in original-image pixels) of a model's maps under protocol "mit"."""
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a model name, a model file or a folder of maps, got {type(model).__name__}")
    if blur and (protocol != "mit" or pathlib.Path(model).is_dir()):
        raise ValueError(f"blur applies to a model's maps under protocol 'mit', not to "
                         f"{'a folder of maps' if protocol == 'mit' else 'protocol ' + repr(protocol)}")
    if pathlib.Path(model).is_dir():
        source = MapDirectory(model, "map" if protocol == "mit" else "network")
        return source, source.name, source.describe()
    from fastsal_tf.api import MODEL_SUFFIXES, SHIPPED_MODELS, load_model

    text = os.fspath(model)
    if text.lower() not in SHIPPED_MODELS and pathlib.Path(text).suffix.lower() not in MODEL_SUFFIXES:
        raise ValueError(f"{text}: not a folder of maps, a model file ({', '.join(sorted(MODEL_SUFFIXES))}) or a "
                         f"shipped model ({', '.join(sorted(SHIPPED_MODELS))})")
    predictor = load_model(model, input_size=input_size, blur=blur)
    source = ModelSource(predictor, protocol)
    name = pathlib.Path(os.fspath(model)).name
    return source, name, predictor.describe() + (f", blur sigma {blur:g} px" if blur else "")


def run_evaluation(model, dataset: str, data_dir, *, split: str | None = None, protocol: str = "mit",
                   sigma_px: float | None = None, limit: int | None = None, baseline_split: str = "auto",
                   split_file=None, seed: int = 0, input_size=None, blur: float = 0.0,
                   progress: Callable[[int, int], None] | None = None) -> EvaluationReport:
    """Evaluates model ('default', a .keras / .tflite / .pth file, or a folder of maps) and the center
    bias on dataset/split under data_dir. model may also be a mapping {row name: anything `evaluate`
    accepts (a folder, a predict function image_path → map, a SaliencyPredictor)} for several rows.
    sigma_px default: 1 degree where the dataset's pixels per degree are known (OSIE: 24 px); otherwise it
    must be given when the images have fixation points. limit: the first N images of the split (the sAUC
    negatives then come from those N). blur: see `model_source`."""
    check_protocol(protocol)
    examples = list(_read(dataset, data_dir, split, split_file))
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be a positive number of images, got {limit}")
        examples = examples[:limit]
    if sigma_px is None:
        sigma_px = default_sigma(dataset)
        if sigma_px is None and any(gt.has_points(e) for e in examples):
            raise ValueError(f"the density sigma for {dataset!r} is unknown: give sigma_px (--sigma) in pixels "
                             f"(about 1 degree of visual angle)")
    gt.check_examples(examples, sigma_px)
    if isinstance(model, Mapping):
        if blur:
            raise ValueError("blur applies to one model given by name or file; blur the predictors of a mapping "
                             "yourself (load_model(..., blur=sigma))")
        rows = {name: as_source(value, protocol) for name, value in model.items()}
        descriptions = {name: getattr(source, "describe", lambda: "")() for name, source in rows.items()}
    else:
        source, name, description = model_source(model, protocol, input_size=input_size, blur=blur)
        name = f"{name} (model)" if name == BASELINE_ROW else name
        rows, descriptions = {name: source}, {name: description}
    if BASELINE_ROW in rows:
        raise ValueError(f"the row name {BASELINE_ROW!r} is reserved for the baseline")
    baseline, baseline_info = center_bias(dataset, data_dir, split, sigma_px, baseline_split, split_file)
    start = time.perf_counter()
    scores = evaluate_many({**rows, BASELINE_ROW: baseline}, examples, protocol=protocol, sigma_px=sigma_px,
                           baseline=baseline, seed=seed, progress=progress)
    sources = {}
    for example in examples:
        kind = "fixations" if gt.has_points(example) else "map"
        sources[kind] = sources.get(kind, 0) + 1
    info = describe_protocol(protocol, sigma_px=sigma_px, seed=seed, n_images=len(examples), dataset=dataset,
                             split=split, baseline_info=baseline_info, ground_truth_sources=sources)
    info["seconds"] = round(time.perf_counter() - start, 2)
    if limit is not None:
        info["limit"] = limit
    descriptions[BASELINE_ROW] = (baseline.describe() if isinstance(baseline, CenteredGaussian) else
                                  f"mean density of the {baseline_info.get('split')} split "
                                  f"({baseline_info.get('images')} images)")
    return EvaluationReport(scores, info, descriptions)
