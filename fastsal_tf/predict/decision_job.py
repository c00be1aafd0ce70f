"""The jobs behind `fastsal center` and `fastsal crop`: per-image steps for fastsal_tf.predict.runner.run.

Each step turns an image's network map into its decision map (SaliencyPredictor.decision_map; runner threads),
takes the decision (fastsal_tf.predict.decisions) and returns (stage timings in seconds, result), the result
being the JSON object of the command:
  center: {"image": path, "width": W, "height": H, "center": [x, y]}  (0-based float pixels)
  crop:   {"image": path, "width": W, "height": H, "crops": [{"aspect": "16:9", "box": [x0, y0, x1, y1]}, ...]}
W and H are the displayed (EXIF-upright) size. A decision that cannot be taken (an image too small for a
ratio) raises ImageError naming the image; the runner reports it and goes on.
"""

from __future__ import annotations

import pathlib
import time

from fastsal_tf.common.files import write_all_atomic
from fastsal_tf.predict import crop_files, decisions
from fastsal_tf.predict.errors import ImageError


def _map(predictor, prepared, net_map):
    start = time.perf_counter()
    prob = predictor.decision_map(prepared, net_map)
    return prob, {**prepared.timings, "map": time.perf_counter() - start}


def _header(item, prepared) -> dict:
    height, width = prepared.original_hw
    return {"image": str(item.source), "width": int(width), "height": int(height)}


def center_step(predictor, prepared, net_map, item) -> tuple[dict[str, float], dict]:
    """The `fastsal center` step for runner.run(write=...)."""
    prob, timings = _map(predictor, prepared, net_map)
    start = time.perf_counter()
    x, y = decisions.attention_center(prob, prepared.original_hw)
    timings["decide"] = time.perf_counter() - start
    return timings, {**_header(item, prepared), "center": [float(x), float(y)]}


def crop_paths(item, aspects, suffix: str) -> list[pathlib.Path]:
    """Where `fastsal crop --out` writes an item's crops: <out>/<sub>/<stem>_crop_<W>x<H><suffix>, suffix
    ".jpg" for JPEG sources and ".png" for others (crop_files.crop_suffix)."""
    return [item.out_base.with_name(f"{item.out_base.name}_crop_{aspect.tag}{suffix}") for aspect in aspects]


class CropStep:
    """The `fastsal crop` step for runner.run(write=...): boxes for `aspects` (Aspect list) at `scale`;
    with write_files, the crops are also written (see crop_files) beside item.out_base."""

    def __init__(self, aspects, scale: float = 1.0, write_files: bool = False):
        self.aspects = [decisions.parse_aspect(aspect) for aspect in aspects]
        self.scale = float(scale)
        self.write_files = write_files

    def __call__(self, predictor, prepared, net_map, item) -> tuple[dict[str, float], dict]:
        prob, timings = _map(predictor, prepared, net_map)
        start = time.perf_counter()
        try:
            boxes = decisions.crop_boxes(prob, prepared.original_hw, self.aspects, self.scale)
        except ValueError as error:
            raise ImageError(item.source, str(error)) from None
        timings["decide"] = time.perf_counter() - start
        if self.write_files:
            start = time.perf_counter()
            contents = crop_files.encode_crops(item.source, boxes, predictor.max_pixels)
            paths = crop_paths(item, self.aspects, crop_files.crop_suffix(item.source))
            write_all_atomic(dict(zip(paths, contents)))
            timings["encode"] = time.perf_counter() - start
        crops = [{"aspect": aspect.label, "box": [int(v) for v in box]} for aspect, box in zip(self.aspects, boxes)]
        return timings, {**_header(item, prepared), "crops": crops}
