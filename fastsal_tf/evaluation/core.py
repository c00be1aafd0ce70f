"""evaluate(): score predictions against a dataset's ground truth under a named protocol.

Protocols (both score with the MIT Saliency Benchmark definitions of fastsal_tf.metrics):
- "mit" (ours): the prediction is a saliency / probability map (what `predict_map` returns: the image size,
  summing to 1); a map of another size is resized to the image by the metrics' rule (MATLAB imresize
  bicubic, `metrics.resize_map`). Maps must be finite and non-negative (ValueError naming the file or
  image otherwise).
- "authors": models get the authors' preprocessing (PIL LANCZOS stretch to the network size), then the
  FastSal paper's eval.py post-processing is applied to the network's logits at network size (sigmoid →
  cv2 INTER_AREA resize to the image → min-max → 5×5 Gaussian blur → clip [0, 1], see
  fastsal_tf.evaluation.authors); the result is scored with the same metrics. Only the maps follow
  eval.py; the metric definitions are ours. Sources that already give final maps (the center-bias row) are
  scored as they are.
Ground truth, sAUC negatives and the center bias: see fastsal_tf.evaluation.ground_truth.
Randomness (AUC-Judd jitter, AUC-Borji and sAUC negatives): one numpy generator per image, seeded by
(seed, crc32(image id)), the same for every model, so models meet the same random draws and results do not
depend on the order of the images.
Undefined values (an image without fixations, a constant map): NaN, left out of the means, with one
EvaluationWarning per image naming it and the metrics; `DatasetScores.counts()` says how many images each
mean used.
"""

from __future__ import annotations

import os
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from fastsal_tf.evaluation import ground_truth as gt
from fastsal_tf.evaluation.authors import authors_map
from fastsal_tf.evaluation.sources import (CenteredGaussian, FixedMap, FunctionSource, MapDirectory, ModelSource,
                                           Prediction)
from fastsal_tf.imaging import GAUSSIAN_SD_FRACTION
from fastsal_tf.metrics import EPS, JITTER, DatasetScores, MetricWarning, score_image

PROTOCOLS = ("mit", "authors")
METRICS = ("auc_judd", "auc_borji", "auc_shuffled", "nss", "cc", "kld", "sim", "information_gain")
LABELS = {"auc_judd": "AUC-Judd", "auc_borji": "AUC-Borji", "auc_shuffled": "sAUC", "nss": "NSS", "cc": "CC",
          "kld": "KLD", "sim": "SIM", "information_gain": "IG"}
LOWER_IS_BETTER = ("kld",)
EvaluationWarning = gt.EvaluationWarning


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return protocol


def as_source(predictions, protocol: str = "mit"):
    """A prediction source from: a folder path (MapDirectory), a SaliencyPredictor (ModelSource), a callable
    image_path -> map (FunctionSource, kind "map"; "logits" under the authors' protocol), or a source."""
    check_protocol(protocol)
    if isinstance(predictions, (str, os.PathLike)):
        return MapDirectory(predictions, "map" if protocol == "mit" else "network")
    if hasattr(predictions, "predict_map") and hasattr(predictions, "backend"):
        return ModelSource(predictions, protocol)
    if isinstance(predictions, (MapDirectory, FunctionSource, ModelSource, FixedMap, CenteredGaussian)):
        return predictions
    if callable(predictions):
        return FunctionSource(predictions, "map" if protocol == "mit" else "logits")
    raise TypeError(f"cannot evaluate {type(predictions).__name__}: give a folder of maps, a predict function "
                    f"or a SaliencyPredictor")


def as_baseline(baseline):
    """The center-bias baseline: None (centred Gaussian), an (H, W) map, or a FixedMap / CenteredGaussian."""
    if baseline is None:
        return CenteredGaussian()
    if isinstance(baseline, (FixedMap, CenteredGaussian)):
        return baseline
    return FixedMap(np.asarray(baseline, dtype=np.float64))


def _describe(source) -> str:
    return source.describe() if hasattr(source, "describe") else str(source)


def final_map(prediction: Prediction, hw: tuple[int, int], protocol: str, where: str) -> np.ndarray:
    """The map to score for one image under the protocol; ValueError naming `where` on bad values."""
    values = np.asarray(prediction.values)
    if prediction.kind in ("logits", "sigmoid"):
        if protocol != "authors":
            raise ValueError(f"{where}: network {prediction.kind} can only be scored with the authors' protocol; "
                             f"the mit protocol needs a saliency map")
        try:
            return authors_map(values, hw, kind=prediction.kind)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"{where}: a map must be (H, W), got shape {values.shape}")
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"{where}: map contains NaN or Inf")
    if (values < 0).any():
        raise ValueError(f"{where}: map has negative values; saliency / probability maps must be non-negative "
                         f"(min {values.min():g})")
    return values


def image_rng(seed: int, image_id: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(str(image_id).encode("utf-8"))])


def _score(values, truth, baseline_map, others, rng, image_id, model_name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MetricWarning)
        scores = score_image(values, truth.fixation_map, truth.density, baseline_map=baseline_map,
                             other_fixation_map=others, rng=rng)
    reasons = []
    for item in caught:
        if issubclass(item.category, MetricWarning):
            reasons.append(str(item.message).replace("; returning NaN", ""))
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    if reasons:
        warnings.warn(f"image {image_id!r} ({model_name}): undefined, scored NaN and left out of the means: "
                      f"{'; '.join(reasons)}", EvaluationWarning, stacklevel=3)
    return {name: scores[name] for name in METRICS if name in scores}


def evaluate_many(sources: Mapping[str, object], examples: Sequence, *, protocol: str = "mit",
                  sigma_px: float | None = None, baseline=None, seed: int = 0,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, DatasetScores]:
    """Scores several prediction sources on the same images, computing each image's ground truth once.

    sources: {row name: predictions} (anything `as_source` accepts). examples: SaliencyExamples (e.g. a
    `read_dataset(...)` result). sigma_px: the density Gaussian in pixels of the stored images (needed when
    the examples have fixation points; OSIE: 24 px ≈ 1 degree). baseline: the center bias used by
    information gain (see `as_baseline`; default a centred Gaussian). progress(done, total) is called after
    each image. Returns {row name: DatasetScores} with the eight metrics per image (see METRICS).
    """
    check_protocol(protocol)
    examples = list(examples)
    gt.check_examples(examples, sigma_px)
    resolved = {name: as_source(value, protocol) for name, value in sources.items()}
    if not resolved:
        raise ValueError("nothing to evaluate: no prediction sources given")
    for source in resolved.values():
        if isinstance(source, MapDirectory):
            source.check_complete(examples)
    baseline = as_baseline(baseline)
    negatives = gt.ShuffledNegatives(examples)
    results = {name: DatasetScores() for name in resolved}
    for done, example in enumerate(examples, start=1):
        hw = (int(example.height), int(example.width))
        truth = gt.image_ground_truth(example, sigma_px)
        baseline_map = others = None
        if truth.fixation_map is not None:
            baseline_map = baseline.at(hw)
            others = negatives.other_fixation_map(example)
        for name, source in resolved.items():
            where = f"{_describe(source)}, image {example.id!r}"
            values = final_map(source(example), hw, protocol, where)
            results[name].add(example.id, _score(values, truth, baseline_map, others, image_rng(seed, example.id),
                                                 example.id, name))
        if progress is not None:
            progress(done, len(examples))
    return results


def evaluate(predictions, examples: Sequence, *, protocol: str = "mit", sigma_px: float | None = None,
             baseline=None, seed: int = 0, progress: Callable[[int, int], None] | None = None) -> DatasetScores:
    """Scores one prediction source (a folder of maps, a predict function image_path → map, or a
    SaliencyPredictor) on examples; see `evaluate_many` for the arguments."""
    return evaluate_many({"model": predictions}, examples, protocol=protocol, sigma_px=sigma_px, baseline=baseline,
                         seed=seed, progress=progress)["model"]


def describe_protocol(protocol: str, *, sigma_px: float | None, seed: int = 0, n_images: int | None = None,
                      dataset: str | None = None, split: str | None = None, baseline_info: dict | None = None,
                      ground_truth_sources: Mapping[str, int] | None = None) -> dict:
    """Everything a reader needs to reproduce the numbers, as a JSON-ready dict."""
    check_protocol(protocol)
    if protocol == "mit":
        prediction = ("saliency / probability map as the model outputs it at the image size (fastsal_tf.api "
                      "predict_map: sums to 1); maps of another size are resized to the image by MATLAB imresize "
                      "bicubic (antialiased when shrinking), as the MIT code does")
    else:
        prediction = ("models: the image stretched to the network size with PIL LANCZOS (the authors' "
                      "preprocessing), raw logits; then the authors' eval.py post-processing of the network output "
                      "at network size: sigmoid -> "
                      "cv2.resize INTER_AREA to the image size -> min-max -> cv2.GaussianBlur 5x5 sigma 0 (fixed "
                      "binomial kernel [1 4 6 4 1]/16, reflect-101 border) -> clip [0, 1]; precomputed .npy files "
                      "hold logits, image files sigmoid maps x255; the center-bias row is scored as it is")
    return {
        "protocol": protocol,
        "dataset": dataset,
        "split": split,
        "images": n_images,
        "ground_truth_sources": dict(ground_truth_sources or {}),
        "prediction": prediction,
        "metrics": "MIT Saliency Benchmark definitions (fastsal_tf.metrics; Bylinskii et al., TPAMI 2019)",
        "fixation_map": "all observers' fixations rasterised at the stored image size (nearest pixel); a pixel "
                        "fixated several times counts once",
        "density": (f"fixation map blurred by a Gaussian of sigma {sigma_px:g} px (truncated at 4 sigma, zero "
                    f"outside the image), normalised to sum 1; the dataset's continuous map for images without "
                    f"fixation points" if sigma_px else "the dataset's continuous maps"),
        "sigma_px": sigma_px,
        "eps": EPS,
        "auc_judd": f"thresholds at the fixated values; uniform jitter [0, {JITTER:g}) before min-max",
        "auc_borji": "100 splits of N_fix uniform random pixels (with replacement), threshold step 0.1",
        "sauc_negatives": "union of the OTHER evaluated images' fixations, each image's points scaled into this "
                          "image's frame and rasterised at its size; per split min(N_fix, N_other) of them "
                          "without replacement, 100 splits, threshold step 0.1",
        "nss": "mean over fixated pixels of the standardised map (std with ddof=1)",
        "information_gain": "bits per fixated pixel against the center-bias baseline (both min-max normalised, "
                            "then divided by their sums), eps as above",
        "center_bias": baseline_info or {"kind": "centred Gaussian", "sd_fraction": GAUSSIAN_SD_FRACTION},
        "random": f"numpy default_rng([seed, crc32(image id)]) per image, the same for every model; seed {seed}",
        "seed": seed,
        "undefined": "NaN (e.g. an image without fixations); left out of the means, see the counts",
    }
