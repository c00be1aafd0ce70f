"""Writes the evaluation fixtures beside this file (run again after changing it; outputs are committed).

dataset/: a generic-folder dataset (fastsal_tf.data.readers.folder): images a, b (32×24 W×H), c (40×30,
another size) with hand-made fixations in fixations/<id>.csv (0-based x, y), and d (32×24) with only a
continuous map in maps/d.png.
maps/: precomputed predictions for every image, in each accepted form: a.npy (float map), b.png (8-bit),
c_saliency.npy (as `fastsal predict --npy` names it), d.png. Each is a smooth blob near that image's
fixations plus a weak centred Gaussian, so it is a plausible, imperfect prediction.
"""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
from PIL import Image
from scipy import ndimage

HERE = pathlib.Path(__file__).resolve().parent
SIZES = {"a": (24, 32), "b": (24, 32), "c": (30, 40), "d": (24, 32)}  # (H, W)
FIXATIONS = {
    "a": [(5, 4), (20, 10), (26, 19), (12, 15), (20, 10), (15, 12)],
    "b": [(8, 6), (25, 8), (17, 18), (16, 12)],
    "c": [(10, 7), (30, 20), (20, 15), (21, 14), (38, 2)],
}


def _image(name: str) -> np.ndarray:
    height, width = SIZES[name]
    y, x = np.mgrid[0:height, 0:width]
    seed = ord(name)
    return np.stack([(7 * x + seed) % 256, (9 * y + 2 * seed) % 256, (x * y + seed) % 256], -1).astype(np.uint8)


def _blob(hw, points, sigma) -> np.ndarray:
    grid = np.zeros(hw)
    for x, y in points:
        grid[int(round(y)), int(round(x))] += 1.0
    return ndimage.gaussian_filter(grid, sigma, mode="constant")


def _center(hw) -> np.ndarray:
    height, width = hw
    y, x = np.mgrid[0:height, 0:width]
    dy = (y - (height - 1) / 2) / (0.25 * height)
    dx = (x - (width - 1) / 2) / (0.25 * width)
    return np.exp(-0.5 * (dy ** 2 + dx ** 2))


def main() -> None:
    for folder in ("dataset", "maps"):
        shutil.rmtree(HERE / folder, ignore_errors=True)
    for sub in ("images", "fixations", "maps"):
        (HERE / "dataset" / sub).mkdir(parents=True)
    (HERE / "maps").mkdir()
    d_truth = _blob(SIZES["d"], [(10, 8), (22, 15)], 3.0)
    for name, hw in SIZES.items():
        Image.fromarray(_image(name)).save(HERE / "dataset" / "images" / f"{name}.png")
        if name in FIXATIONS:
            lines = ["x,y"] + [f"{x},{y}" for x, y in FIXATIONS[name]]
            (HERE / "dataset" / "fixations" / f"{name}.csv").write_text("\n".join(lines) + "\n")
    Image.fromarray(np.round(255 * d_truth / d_truth.max()).astype(np.uint8)).save(HERE / "dataset" / "maps" / "d.png")
    rng = np.random.default_rng(7)
    for name, hw in SIZES.items():
        points = FIXATIONS.get(name, [(10, 8), (22, 15)])
        shifted = [(x + rng.integers(-2, 3), y + rng.integers(-2, 3)) for x, y in points]
        shifted = [(min(max(x, 0), hw[1] - 1), min(max(y, 0), hw[0] - 1)) for x, y in shifted]
        prediction = _blob(hw, shifted, 2.5)
        prediction = prediction / prediction.max() + 0.2 * _center(hw)
        prediction /= prediction.sum()
        if name == "a":
            np.save(HERE / "maps" / "a.npy", prediction)
        elif name == "c":
            np.save(HERE / "maps" / "c_saliency.npy", prediction)
        else:
            scaled = np.round(255 * prediction / prediction.max()).astype(np.uint8)
            Image.fromarray(scaled).save(HERE / "maps" / f"{name}.png")


if __name__ == "__main__":
    main()
