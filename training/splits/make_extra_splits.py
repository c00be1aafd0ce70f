"""Writes the fixed splits of the extra labelled sets (EXTRA.md) into fastsal_tf/data/:

- eyecrowd_split.json: the 500 EyeCrowd images permuted with numpy.random.RandomState(0); first 400 =
  train, last 100 = validation.
- hamburg_cv2_split.json: 2,801 / 200 train / validation ids. Near-identical images are grouped first
  (each image reduced to 16×16 grayscale, standardised; two images whose mean squared difference is below
  0.05 are joined, and groups are the connected components, which covers the 16 near-duplicate pairs with
  different maps); the groups are permuted with RandomState(0) and filled into validation until it holds 200
  images, so a group never straddles the split.

  python training/splits/make_extra_splits.py --data_dir=/path/to/extra    # the extra_data.py output folder
"""

import json
import pathlib
import sys

import numpy as np
from absl import flags
from PIL import Image

from fastsal_tf.cli import absl_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "folder with eyecrowd/ and hamburg_cv2/ (shared/tools/extra_data.py --out)")
flags.DEFINE_string("out_dir", str(pathlib.Path(__file__).resolve().parents[2] / "fastsal_tf" / "data"),
                    "where the JSON files go")
flags.mark_flag_as_required("data_dir")

DUPLICATE_MSE = 0.05
HAMBURG_VALIDATION = 200


def _thumbnail(path):
    gray = np.asarray(Image.open(path).convert("L").resize((16, 16), Image.BILINEAR), np.float64).ravel()
    return (gray - gray.mean()) / (gray.std() + 1e-6)


def duplicate_groups(paths):
    """Connected components of the near-identical relation (thumbnail MSE < DUPLICATE_MSE), as index lists."""
    features = np.stack([_thumbnail(p) for p in paths])
    parent = list(range(len(paths)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(paths)):
        mse = ((features[i + 1:] - features[i]) ** 2).mean(axis=1)
        for j in np.nonzero(mse < DUPLICATE_MSE)[0] + i + 1:
            parent[root(int(j))] = root(i)
    groups = {}
    for i in range(len(paths)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values())


def _write(path, about, split):
    path.write_text(json.dumps({"about": about, **split}, indent=1) + "\n")
    print(f"wrote {path}: " + ", ".join(f"{k} {len(v)}" for k, v in split.items()))


def main(argv):
    del argv
    data, out = pathlib.Path(FLAGS.data_dir), pathlib.Path(FLAGS.out_dir)
    stimuli = sorted(p.name for p in (data / "eyecrowd" / "data" / "stimuli").glob("*.jpg"))
    if len(stimuli) != 500:
        print(f"make_extra_splits: expected 500 EyeCrowd images, found {len(stimuli)}", file=sys.stderr)
        return 2
    order = np.random.RandomState(0).permutation(len(stimuli))
    _write(out / "eyecrowd_split.json",
           "EyeCrowd: the 500 images permuted with numpy.random.RandomState(0); first 400 train, last 100 "
           "validation (training/splits/make_extra_splits.py). Compare recipes on all 500; never train on it then.",
           {"train": sorted(stimuli[i] for i in order[:400]), "validation": sorted(stimuli[i] for i in order[400:])})
    folder = data / "hamburg_cv2" / "data" / "training" / "images" / "train"
    paths = sorted(folder.glob("image-*.png"), key=lambda p: int(p.stem.split("-")[1]))
    groups = duplicate_groups(paths)
    joined = [g for g in groups if len(g) > 1]
    validation = []
    for k in np.random.RandomState(0).permutation(len(groups)):
        if len(validation) + len(groups[k]) <= HAMBURG_VALIDATION:
            validation += groups[k]
        if len(validation) == HAMBURG_VALIDATION:
            break
    chosen = set(validation)
    ids = [p.stem for p in paths]
    _write(out / "hamburg_cv2_split.json",
           f"hamburg_cv2: {len(ids)} images; near-identical groups ({len(joined)} groups of 2+ images, thumbnail "
           f"MSE < {DUPLICATE_MSE}) kept on one side; groups permuted with numpy.random.RandomState(0) and "
           f"{HAMBURG_VALIDATION} images drawn into validation (training/splits/make_extra_splits.py).",
           {"train": [ids[i] for i in range(len(ids)) if i not in chosen],
            "validation": [ids[i] for i in sorted(chosen)]})
    print("near-identical groups: " + "; ".join(" ".join(ids[i] for i in g) for g in joined))
    return 0


if __name__ == "__main__":
    absl_flags.run(main)
