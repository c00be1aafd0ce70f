"""Quality and speed of `fastsal crop` / `fastsal center` against human fixations and Google's attention-center.

Usage:
  python benchmarks/crop_center.py [--osie ../shared/data/osie] [--eyecrowd /work/data/extra/eyecrowd]
      [--model default] [--timing-model default-int8] [--work /tmp/fastsal_crop_center] [--timing-images 300]
      [--jobs 2]
  python benchmarks/crop_center.py --sweep     # the parameter choice, on OSIE validation
  python benchmarks/crop_center.py --sweep --sweep-set eyecrowd   # the same candidates on the held-out set

Scores, per image then averaged (paired differences with their standard errors over images):
- crop coverage, for aspect ratios 1:1, 16:9 and 9:16 at full size (the largest box of the ratio): the
  fraction of the image's human fixations inside the crop (a fixation counts at its nearest pixel). Baselines:
  the centred box of the same size, and the same-size box centred on attention-center's point (clamped into
  the image); upper bound: the same-size box holding the most fixations (the oracle). "gap closed" is
  (method − centred) / (oracle − centred), from the means, ± its standard error over images (gap_closed).
- centre hit rate: the fraction of fixations within 10 % of the image diagonal of the predicted centre.
  Baselines: the image centre and attention-center's pred_center (mapped back from its letterboxed 480×640
  frame); upper bound: the best point for the fixations themselves (searched on a 4-px grid).
- time per image of `fastsal crop --aspect 1:1,16:9,9:16` on 640×480 JPEGs (the job behind the command,
  model --timing-model, --jobs threads), on OSIE photos resized to 640x480 JPEGs (benchmarks/predict_throughput.py's
  images).

The parameters of the decisions (fastsal_tf/predict/decisions.py) were chosen with --sweep on OSIE
validation only; EyeCrowd (other lab, other observers, crowd scenes) is the held-out check.
Network maps and attention-center's points are cached in --work (they take a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ATTENTION_CENTER = ROOT.parent / "shared" / "teachers" / "attention_center" / "center.tflite"
AC_HW = (480, 640)


def load_examples(dataset: str, root: str) -> list:
    """SaliencyExamples of OSIE validation or all of EyeCrowd."""
    from fastsal_tf.data.registry import read_dataset

    split = "validation" if dataset == "osie" else "all"
    return list(read_dataset(dataset, root, split).examples)


def _cached(cache: pathlib.Path, examples, key: str):
    """The array `key` of the cache file when it was made for these examples (same ids, same order)."""
    if cache.exists():
        with np.load(cache) as data:
            if "ids" in data and list(data["ids"]) == [e.id for e in examples]:
                return data[key]
    return None


def maps_cache(work: pathlib.Path, dataset: str, model_spec: str, multiscale: bool = False,
               flip: bool = False) -> pathlib.Path:
    """The cache file of a model's maps on a set, named by the model file it resolves to (its name, size
    and modification time), so that a shipped name that now means another file is not served stale maps;
    multi-scale and flip-averaged maps (network_maps) have their own files."""
    import hashlib

    from fastsal_tf.runtime.resolve import resolve

    path = resolve(model_spec).path
    stat = path.stat()
    stamp = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    return work / f"{dataset}_{path.stem}_{stamp}{'_multiscale' if multiscale else ''}{'_flip' if flip else ''}_maps.npz"


def network_maps(examples, model_spec: str, cache: pathlib.Path, multiscale: bool = False,
                 flip: bool = False) -> np.ndarray:
    """(N, h, w) float32 network-frame probability maps of the examples' images (cached in `cache`), from
    load_model(model_spec, multiscale=..., flip=...)."""
    maps = _cached(cache, examples, "maps")
    if maps is not None:
        return maps
    from fastsal_tf.api import load_model

    predictor = load_model(model_spec, multiscale=multiscale, flip=flip)
    maps = []
    for start in range(0, len(examples), 8):
        prepared = [predictor.prepare(e.image_path) for e in examples[start:start + 8]]
        maps.append(predictor.infer(prepared))
    maps = np.concatenate(maps).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, maps=maps, ids=[e.id for e in examples])
    return maps


class AttentionCenter:
    """Google's attention-center .tflite: image → (x, y) in the image's 0-based pixel coordinates.

    The image is letterboxed into 480×640 (scaled to fit, centred, black bars; bilinear), fed as float32
    RGB in [0, 1]; pred_center, in the padded frame, is mapped back through the placement."""

    def __init__(self, path=ATTENTION_CENTER, threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.runner = self.interpreter.get_signature_runner("serving_default")

    def center(self, image_path) -> tuple[float, float]:
        from PIL import Image

        from fastsal_tf.imaging import placement
        from fastsal_tf.predict.images import decode

        rgb, (height, width), _ = decode(image_path)
        place = placement((height, width), AC_HW, "letterbox")
        (content_h, content_w), (offset_y, offset_x) = place.content_hw, place.offset_yx
        frame = np.zeros((*AC_HW, 3), np.float32)
        content = rgb.resize((content_w, content_h), Image.Resampling.BILINEAR)
        frame[offset_y:offset_y + content_h, offset_x:offset_x + content_w] = np.asarray(content, np.float32) / 255
        x, y = self.runner(filename=np.array(b""), image=frame[None])["pred_center"][0]
        return ((x - offset_x + 0.5) * width / content_w - 0.5, (y - offset_y + 0.5) * height / content_h - 0.5)


def attention_centers(examples, cache: pathlib.Path) -> np.ndarray:
    """(N, 2) attention-center (x, y) points of the examples' images (cached)."""
    centers = _cached(cache, examples, "centers")
    if centers is not None:
        return centers
    model = AttentionCenter()
    centers = np.array([model.center(e.image_path) for e in examples], np.float64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, centers=centers, ids=[e.id for e in examples])
    return centers


ASPECTS = ("1:1", "16:9", "9:16")


def decision_maps(examples, maps: np.ndarray, at_image_size: bool = False):
    """Yields (example, float64 probability map) with the map as SaliencyPredictor.decision_map makes it:
    at decisions.map_size, the image's size scaled down to the network's resolution. at_image_size=True
    gives the map at the image's size instead (the sweep's candidates that work in pixels need it)."""
    from fastsal_tf.predict import decisions, postprocess
    from fastsal_tf.imaging import placement

    for example, net_map in zip(examples, maps):
        hw = (example.height, example.width)
        place = placement(hw, net_map.shape, "stretch")
        size = hw if at_image_size else decisions.map_size(hw, place.content_hw)
        prob = postprocess.probability_to_output(net_map, place, hw, size)
        yield example, postprocess.normalise(prob.astype(np.float64))


def score_image(example, prob, ac_point, crop_prior: float, center_prior: float) -> dict[str, float]:
    """One image's scores: coverage per aspect and method, hit rate per method (see the module docstring)."""
    from fastsal_tf.evaluation import crop_scores as cs
    from fastsal_tf.predict import decisions

    hw = (example.height, example.width)
    counts = cs.fixation_counts(example.fixations, hw)
    row = {}
    for aspect, box in zip(ASPECTS, decisions.crop_boxes(prob, hw, ASPECTS, prior=crop_prior)):
        box_hw = (box[3] - box[1], box[2] - box[0])
        row[f"crop {aspect} fastsal"] = cs.coverage(counts, box)
        row[f"crop {aspect} centred"] = cs.coverage(counts, cs.centered_box(hw, box_hw))
        row[f"crop {aspect} attention-center"] = cs.coverage(counts, cs.box_around(ac_point, hw, box_hw))
        row[f"crop {aspect} oracle"] = cs.coverage(counts, cs.oracle_box(counts, box_hw))
    fixations = example.fixations
    row["center fastsal"] = cs.hit_rate(fixations, decisions.attention_center(prob, hw, prior=center_prior), hw)
    row["center image centre"] = cs.hit_rate(fixations, ((hw[1] - 1) / 2, (hw[0] - 1) / 2), hw)
    row["center attention-center"] = cs.hit_rate(fixations, ac_point, hw)
    row["center oracle"] = cs.oracle_hit_rate(fixations, hw)
    return row


def _blur_peak(prob, sigma_px):
    from scipy import ndimage

    blurred = ndimage.gaussian_filter(prob, sigma_px, mode="constant")
    y, x = np.unravel_index(int(np.argmax(blurred)), blurred.shape)
    return float(x), float(y)


def _center_of_mass(prob, power):
    weights = prob ** power
    ys, xs = np.indices(prob.shape)
    return float((weights * xs).sum() / weights.sum()), float((weights * ys).sum() / weights.sum())


CROP_RULE = "crop: window mass of p^{:g}, prior {}, sigma {}"  # map power γ, prior weight w, prior width σ
CENTER_RULE = "center: disk mass, prior {}"


def sweep(examples, maps) -> list[tuple[str, float, float, float, float]]:
    """(candidate, mean score, standard error, mean paired difference from the shipped rule of its kind,
    standard error of that difference) for the centre and crop candidates on these images. Crop candidates:
    the window mass of q = (1 − w)·p^γ/Σp^γ + w·g, g the centred Gaussian with standard deviations σ·H, σ·W,
    over a grid of γ, w and σ, searched on the decision map (as shipped); the p^2, p^4 maps without prior;
    the map blurred. Centre candidates (on the map at the image's size): the disk mass with prior weights,
    centres of mass, peaks of the blurred map, the image centre."""
    from scipy import ndimage

    from fastsal_tf.evaluation import crop_scores as cs
    from fastsal_tf.predict import decisions

    scores: dict[str, list[float]] = {}

    def add(name, value):
        scores.setdefault(name, []).append(value)

    def crop_score(prob, hw, counts, **rule):
        return float(np.mean([cs.coverage(counts, b) for b in decisions.crop_boxes(prob, hw, ASPECTS, **rule)]))

    pairs = zip(decision_maps(examples, maps, at_image_size=True), decision_maps(examples, maps))
    for (example, prob), (_, small) in pairs:
        hw = (example.height, example.width)
        diagonal = float(np.hypot(*hw))
        fixations = example.fixations
        counts = cs.fixation_counts(fixations, hw)
        for prior in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7):
            add(CENTER_RULE.format(prior),
                cs.hit_rate(fixations, decisions.attention_center(prob, hw, prior=prior), hw))
        for power in (0.5, 0.75, 1, 1.5):
            powered = small ** power
            powered /= powered.sum()
            add(f"crop: window mass of p^{power:g}, no prior", crop_score(powered, hw, counts, prior=0.0))
            for sigma in (0.2, 0.25, 0.3, 0.35):
                for prior in (0.1, 0.2, 0.3, 0.4, 0.5):
                    add(CROP_RULE.format(power, prior, sigma),
                        crop_score(powered, hw, counts, prior=prior, prior_sigma=sigma))
        for power in (1, 2, 4):
            add(f"center: centre of mass of p^{power}", cs.hit_rate(fixations, _center_of_mass(prob, power), hw))
        for power in (2, 4):
            sharpened = small ** power
            add(f"crop: window mass of p^{power}, no prior", crop_score(sharpened / sharpened.sum(), hw, counts,
                                                                        prior=0.0))
        for fraction in (0.0, 0.02, 0.05, 0.1):
            add(f"center: peak of map blurred sigma {fraction} diag",
                cs.hit_rate(fixations, _blur_peak(prob, fraction * diagonal), hw))
            if fraction:
                blurred = ndimage.gaussian_filter(prob, fraction * diagonal, mode="constant")
                add(f"crop: window mass of map blurred sigma {fraction} diag, prior {decisions.CROP_PRIOR}",
                    crop_score(blurred, hw, counts, prior=decisions.CROP_PRIOR))
        add("center: image centre", cs.hit_rate(fixations, ((hw[1] - 1) / 2, (hw[0] - 1) / 2), hw))
        centred = [cs.coverage(counts, cs.centered_box(hw, (b[3] - b[1], b[2] - b[0])))
                   for b in decisions.crop_boxes(small, hw, ASPECTS)]
        add("crop: centred", np.mean(centred))
    shipped = {"crop": np.asarray(scores[CROP_RULE.format(1, decisions.CROP_PRIOR, decisions.PRIOR_SIGMA)]),
               "center": np.asarray(scores[CENTER_RULE.format(decisions.CENTER_PRIOR)])}
    rows = []
    for name, values in scores.items():
        values = np.asarray(values)
        difference = values - shipped[name.split(":")[0]]
        rows.append((name, *_mean_se(values), *_mean_se(difference)))
    return rows


def _mean_se(values) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def gap_closed(method, centred, oracle) -> tuple[float, float]:
    """The share of the centred-to-oracle gap a method closes, R = mean(method − centred) / mean(oracle −
    centred) over images, and its standard error by the delta method for a ratio of means:
    sqrt(var(d − R·e) / n) / mean(e), d = method − centred, e = oracle − centred per image."""
    d = np.asarray(method, np.float64) - np.asarray(centred, np.float64)
    e = np.asarray(oracle, np.float64) - np.asarray(centred, np.float64)
    scale = max(float(e.mean()), 1e-12)
    ratio = float(d.mean()) / scale
    return ratio, float(np.std(d - ratio * e, ddof=1) / np.sqrt(len(d))) / scale


def report(name: str, rows: list[dict[str, float]]) -> tuple[list[str], dict[str, bool]]:
    """Markdown lines for one dataset's per-image score rows, and which goals are met."""
    column = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    for method in ("fastsal", "centred", "attention-center", "oracle"):
        column[f"crop mean {method}"] = np.mean([column[f"crop {a} {method}"] for a in ASPECTS], axis=0)
    lines = [f"### {name} ({len(rows)} images)", "",
             "| crop coverage | fastsal | centred | attention-center | oracle | gap closed | fastsal − centred "
             "| fastsal − attention-center |", "|---|---|---|---|---|---|---|---|"]
    for aspect in (*ASPECTS, "mean"):
        means = {m: float(column[f"crop {aspect} {m}"].mean())
                 for m in ("fastsal", "centred", "attention-center", "oracle")}
        gap = gap_closed(column[f"crop {aspect} fastsal"], column[f"crop {aspect} centred"],
                         column[f"crop {aspect} oracle"])
        versus_centred = _mean_se(column[f"crop {aspect} fastsal"] - column[f"crop {aspect} centred"])
        versus_ac = _mean_se(column[f"crop {aspect} fastsal"] - column[f"crop {aspect} attention-center"])
        lines.append(f"| {aspect} | {means['fastsal']:.4f} | {means['centred']:.4f} | {means['attention-center']:.4f} "
                     f"| {means['oracle']:.4f} | {gap[0]:.2f} ± {gap[1]:.2f} | {versus_centred[0]:+.4f} ± {versus_centred[1]:.4f} "
                     f"| {versus_ac[0]:+.4f} ± {versus_ac[1]:.4f} |")
    center = {m: float(column[f"center {m}"].mean()) for m in ("fastsal", "image centre", "attention-center", "oracle")}
    versus_image = _mean_se(column["center fastsal"] - column["center image centre"])
    versus_ac_center = _mean_se(column["center fastsal"] - column["center attention-center"])
    lines += ["", "| centre hit rate (10 % of the diagonal) | fastsal | image centre | attention-center | oracle "
              "| fastsal / attention-center | fastsal − image centre | fastsal − attention-center |",
              "|---|---|---|---|---|---|---|---|",
              f"| | {center['fastsal']:.4f} | {center['image centre']:.4f} | {center['attention-center']:.4f} "
              f"| {center['oracle']:.4f} | {center['fastsal'] / center['attention-center']:.3f} "
              f"| {versus_image[0]:+.4f} ± {versus_image[1]:.4f} "
              f"| {versus_ac_center[0]:+.4f} ± {versus_ac_center[1]:.4f} |", ""]
    mean = {m: float(column[f"crop mean {m}"].mean()) for m in ("fastsal", "centred", "oracle")}
    crop_ac = _mean_se(column["crop mean fastsal"] - column["crop mean attention-center"])
    goals = {
        "crops close at least half of the centred-to-oracle gap":
            (mean["fastsal"] - mean["centred"]) >= 0.5 * (mean["oracle"] - mean["centred"]),
        "crops above attention-center's by more than two paired standard errors": crop_ac[0] > 2 * crop_ac[1],
        "centre hit rate >= 1.1 x attention-center's": center["fastsal"] >= 1.1 * center["attention-center"],
        "centre hit rate above the image centre's": center["fastsal"] > center["image centre"],
    }
    return lines, goals


def crop_throughput(stimuli: pathlib.Path, work: pathlib.Path, count: int, jobs: int,
                    model: str = "default-int8") -> list[str]:
    """Times the `fastsal crop --aspect 1:1,16:9,9:16` job on the first `count` images of `stimuli`,
    resized to 640x480 JPEGs."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from predict_throughput import make_images

    from fastsal_tf.api import load_model
    from fastsal_tf.predict import runner
    from fastsal_tf.predict.decision_job import CropStep

    folder = work / f"osie_640x480_{count}"
    make_images(stimuli, folder, count)
    predictor = load_model(model)
    items, _ = runner.collect_inputs([folder], work / "crops", kinds=())
    step = CropStep(ASPECTS)
    runner.run(predictor, items[:20], overlay=False, jobs=jobs, write=step)  # warm-up: interpreters, caches
    load_before = os.getloadavg()[0]
    crop = runner.run(predictor, items, overlay=False, jobs=jobs, write=step)
    # The reference under the same load: `fastsal predict --no-overlay` (grayscale PNG maps) on the same images.
    maps = runner.run(predictor, [runner.Item(i.source, work / "maps" / i.source.stem) for i in items],
                      overlay=False, jobs=jobs)
    per_image = {stage: 1000 * seconds / max(crop.done, 1) for stage, seconds in crop.timings.items() if seconds}
    stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in per_image.items())
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [f"`fastsal crop --aspect 1:1,16:9,9:16` job, {model}, {jobs} threads, {crop.done} OSIE photos as 640x480 "
            f"JPEGs: **{crop.images_per_second:.1f} images/s** (per image, thread time in ms: {stages}).",
            f"Same images, same load, the `fastsal predict --no-overlay` job: {maps.images_per_second:.1f} images/s "
            f"(ratio crop / predict {crop.images_per_second / maps.images_per_second:.2f}).",
            f"Load average before {load_before:.2f}, after {load} on {os.cpu_count()} CPUs: other jobs share "
            f"them, so the figures are noisy and lower than on an idle machine."]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--osie", default=str(ROOT.parent / "shared" / "data" / "osie"))
    parser.add_argument("--eyecrowd", default="/work/data/extra/eyecrowd")
    parser.add_argument("--model", default="default", help="model for the quality scores (default: default)")
    parser.add_argument("--multiscale", action="store_true",
                        help="quality maps as `fastsal crop --multiscale` makes them (timing unchanged)")
    parser.add_argument("--flip", action="store_true",
                        help="quality maps as `fastsal crop --flip` makes them (timing unchanged)")
    parser.add_argument("--work", default="/tmp/fastsal_crop_center", help="cache folder")
    parser.add_argument("--timing-images", type=int, default=300, help="JPEGs for the timing (0: no timing)")
    parser.add_argument("--timing-model", default="default-int8", help="model for the timing (default: default-int8)")
    parser.add_argument("--jobs", type=int, default=2, help="threads for the timing (default 2)")
    parser.add_argument("--sweep", action="store_true", help="the parameter sweep (on OSIE validation)")
    parser.add_argument("--sweep-set", choices=("osie", "eyecrowd"), default="osie",
                        help="the set the sweep scores: osie (validation; where the rules are chosen) or eyecrowd "
                             "(the held-out view of the same candidates: for reporting, never for choosing)")
    args = parser.parse_args(argv)
    work = pathlib.Path(args.work)
    from fastsal_tf.predict import decisions

    if args.sweep:
        dataset = args.sweep_set
        examples = load_examples(dataset, args.osie if dataset == "osie" else args.eyecrowd)
        maps = network_maps(examples, args.model, maps_cache(work, dataset, args.model, args.multiscale, args.flip),
                            args.multiscale, args.flip)
        print(f"Sweep on {'OSIE validation' if dataset == 'osie' else 'EyeCrowd (held out)'} ({len(examples)} "
              f"images), model {args.model}: mean ± standard error; Δ: paired against the shipped rule")
        for name, mean, error, delta, delta_error in sweep(examples, maps):
            print(f"  {name:62s} {mean:.4f} ± {error:.4f}   Δ {delta:+.4f} ± {delta_error:.4f}")
        return 0
    options = (" --multiscale" if args.multiscale else "") + (" --flip" if args.flip else "")
    print(f"crop / centre benchmark, model {args.model}{options}; crop prior {decisions.CROP_PRIOR}, centre prior "
          f"{decisions.CENTER_PRIOR} (chosen on OSIE validation; EyeCrowd is held out)\n")
    for dataset, root, title in (("osie", args.osie, "OSIE validation (tuning set)"),
                                 ("eyecrowd", args.eyecrowd, "EyeCrowd (held out)")):
        examples = load_examples(dataset, root)
        maps = network_maps(examples, args.model, maps_cache(work, dataset, args.model, args.multiscale, args.flip),
                            args.multiscale, args.flip)
        centers = attention_centers(examples, work / f"{dataset}_attention_center.npz")
        rows = [score_image(example, prob, center, decisions.CROP_PRIOR, decisions.CENTER_PRIOR)
                for (example, prob), center in zip(decision_maps(examples, maps), centers)]
        lines, goals = report(title, rows)
        print("\n".join(lines))
        for goal, met in goals.items():
            print(f"- {goal}: {'met' if met else 'NOT met'}")
        print()
    if args.timing_images:
        print("\n".join(crop_throughput(pathlib.Path(args.osie) / "data" / "stimuli", work, args.timing_images,
                                        args.jobs, args.timing_model)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
