"""Generalisation report: models scored on OSIE validation, EyeCrowd (cross-dataset) and hamburg_cv2
validation side by side, with per-image paired differences against the first (baseline) condition.

Usage:
  python benchmarks/generalisation.py --osie-dir ../shared/data/osie --extra-dir DATA_DIR --out runs/gen \
      shipped=default mixture=runs/mix_s0/final.keras,runs/mix_s1/final.keras
  NAME=MODEL[,MODEL...]: a model as `fastsal evaluate --model` takes it ('default', a .keras / .tflite file);
  several models separated by commas are runs (seeds) of one condition, whose per-image scores are averaged.
  A teacher candidate: "a.keras+b.keras" is the ensemble of its members (the mean of their probability maps),
  and a "flip:" prefix adds test-time flip averaging (each member also sees the mirrored image, its map
  mirrored back), e.g. teacher=flip:runs/a/final.keras+runs/c/final.keras.
  DATA_DIR: the folder of shared/tools/extra_data.py (eyecrowd/, hamburg_cv2/).

Each model is evaluated once per set with `fastsal evaluate`'s code path (protocol mit; densities: OSIE 24 px,
EyeCrowd 26 px; hamburg_cv2 has maps only, so only CC, KLD and SIM) into OUT/<set>/<model key>/; an
evaluation whose model file is unchanged (same size and modification time) is reused. The table gives each
metric's mean ± per-image standard error, and Δ = the mean per-image difference to the baseline condition
± the standard error of those differences (paired; a difference under two of them is noise).
"""

import argparse
import hashlib
import json
import pathlib
import sys

import numpy as np

SETS = {  # set name → (dataset, split, metrics, folder under --osie-dir / --extra-dir)
    "OSIE val": ("osie", "validation", ("cc", "nss", "auc_judd", "kld"), None),
    "EyeCrowd": ("eyecrowd", "all", ("cc", "nss", "auc_judd", "kld"), "eyecrowd"),
    "Hamburg val": ("hamburg_cv2", "validation", ("cc", "kld", "sim"), "hamburg_cv2"),
}
DELTA_METRICS = {"OSIE val": ("cc", "nss"), "EyeCrowd": ("cc", "nss"), "Hamburg val": ("cc", "kld")}
LABELS = {"cc": "CC", "nss": "NSS", "auc_judd": "AUC-J", "kld": "KLD", "sim": "SIM"}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("conditions", nargs="+", metavar="NAME=MODEL[,MODEL...]")
    parser.add_argument("--osie-dir", required=True, help="OSIE root (../shared/data/osie)")
    parser.add_argument("--extra-dir", required=True, help="extra_data.py output folder (eyecrowd/, hamburg_cv2/)")
    parser.add_argument("--out", required=True, help="folder for the evaluations (reused when the model is unchanged)")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated subset of: {', '.join(SETS)}")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of each set (smoke runs)")
    args = parser.parse_args(argv)
    conditions = {}
    for item in args.conditions:
        name, _, models = item.partition("=")
        if not name or not models or not all(models.split(",")):
            parser.error(f"{item!r}: expected NAME=MODEL[,MODEL...]")
        if name in conditions:
            parser.error(f"the condition name {name!r} is given twice")
        conditions[name] = models.split(",")
    sets = [s.strip() for s in args.sets.split(",")]
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        parser.error(f"--sets: unknown {unknown}; choose from {list(SETS)}")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    return args, conditions, sets


FLIP = "flip:"


def _members(model: str) -> tuple[list[str], bool]:
    """(member specs, flip) of a model spec: one model, or an ensemble "a+b", optionally "flip:"-prefixed."""
    flip = model.startswith(FLIP)
    return model.removeprefix(FLIP).split("+"), flip


def _stamp(model: str) -> dict:
    from fastsal_tf.runtime.resolve import ASSETS_DIR, SHIPPED_MODELS

    stamps = []
    for member in _members(model)[0]:
        shipped = SHIPPED_MODELS.get(member.lower())
        path = ASSETS_DIR / shipped if shipped else pathlib.Path(member)
        if path.is_file():
            stat = path.stat()
            stamps.append({"model": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        else:
            stamps.append({"model": member})
    return {"model": model, "members": stamps}


def evaluation_dir(out: pathlib.Path, set_name: str, model: str, limit) -> pathlib.Path:
    members, flip = _members(model)
    key = hashlib.sha256(json.dumps([[m["model"] for m in _stamp(model)["members"]], flip, limit]).encode())
    stem = "+".join(pathlib.Path(m).stem for m in members) + ("_flip" if flip else "")
    return out / set_name.replace(" ", "_") / f"{stem}_{key.hexdigest()[:10]}"


def ensemble_function(model: str):
    """image path → the mean probability map of the members (and of their flipped predictions with
    "flip:"), each at the stored image size (no EXIF rotation, as dataset labels)."""
    from PIL import Image

    from fastsal_tf.api import load_model

    specs, flip = _members(model)
    predictors = [load_model(spec) for spec in specs]

    def predict(image_path):
        with Image.open(image_path) as image:
            rgb = np.asarray(image.convert("RGB"))
        maps = []
        for predictor in predictors:
            maps.append(predictor.predict_map(rgb))
            if flip:
                maps.append(predictor.predict_map(np.ascontiguousarray(rgb[:, ::-1]))[:, ::-1])
        return np.mean(maps, axis=0)

    predict.__name__ = model
    return predict


def evaluate_once(model: str, set_name: str, args) -> pathlib.Path:
    """The folder holding model's per_image.csv on set_name, evaluating it unless an up-to-date one exists."""
    from fastsal_tf.evaluation import run_evaluation, write_reports

    dataset, split, _, folder = SETS[set_name]
    target = evaluation_dir(pathlib.Path(args.out), set_name, model, args.limit)
    stamp_file = target / "model.json"
    stamp = {**_stamp(model), "limit": args.limit}
    if (target / "per_image.csv").is_file() and stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        return target
    root = args.osie_dir if folder is None else str(pathlib.Path(args.extra_dir) / folder)
    print(f"generalisation: evaluating {model} on {set_name}", file=sys.stderr)
    members, flip = _members(model)
    subject = {model: ensemble_function(model)} if flip or len(members) > 1 else model
    report = run_evaluation(subject, dataset, root, split=split, limit=args.limit, baseline_split="none")
    write_reports(report, target)
    stamp_file.write_text(json.dumps(stamp))
    return target


def _mean_se(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    return f"{values.mean():.3f} ± {np.std(values, ddof=1) / np.sqrt(len(values)):.3f}"


def _delta(values, base) -> str:
    delta = np.asarray(values) - np.asarray(base)
    return f"{delta.mean():+.4f} ± {np.std(delta, ddof=1) / np.sqrt(len(delta)):.4f}"


def set_table(set_name: str, scores: dict, conditions: dict, baseline: str) -> str:
    """Markdown table of one set: a row per condition (its runs' per-image scores averaged)."""
    from fastsal_tf.evaluation.comparison import per_image

    metrics = SETS[set_name][2]
    deltas = DELTA_METRICS[set_name]
    header = ["condition", "runs"] + [LABELS[m] for m in metrics] + [f"Δ{LABELS[m]} vs {baseline}" for m in deltas]
    lines = [f"### {set_name} ({len(next(iter(scores.values())))} images)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for condition, runs in conditions.items():
        cells = [condition, str(len(runs))] + [_mean_se(per_image(scores, runs, m)) for m in metrics]
        for metric in deltas:
            cells.append("—" if condition == baseline else
                         _delta(per_image(scores, runs, metric), per_image(scores, conditions[baseline], metric)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv) -> int:
    args, conditions, sets = parse_args(argv)
    from fastsal_tf.evaluation.comparison import read_per_image

    baseline = next(iter(conditions))
    sections = []
    for set_name in sets:
        metrics = SETS[set_name][2]
        scores, runs_of = {}, {}
        for name, models in conditions.items():
            runs_of[name] = []
            for model in models:
                try:
                    folder = evaluate_once(model, set_name, args)
                    scores[str(folder)] = read_per_image(folder / "per_image.csv", metrics)
                except (OSError, ValueError) as error:
                    print(f"generalisation: error: {name}={model} on {set_name}: {error}", file=sys.stderr)
                    return 2
                runs_of[name].append(str(folder))
        sections.append(set_table(set_name, scores, runs_of, baseline))
    print("\n".join(sections), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
