"""Decisions taken from a saliency map: an attention centre and crops of given aspect ratios.

Both work on a probability map p (summing to 1) at the image's displayed size (H, W) or smaller; then sizes
and coordinates are scaled to `image_hw`. The predictor makes p at `map_size`: the displayed size scaled down
to the network's resolution. Upsampling the network's map further adds no detail, and the searches run on
fewer cells (`benchmarks/crop_center.py` times the decision). Coordinates are 0-based pixels of the displayed
image: a centre (x, y) is a float point where integer values are pixel centres; a box (x0, y0, x1, y1) holds
integer pixel edges, x1 / y1 exclusive.

The methods and constants were chosen by measurement on OSIE validation (human fixations; `python
benchmarks/crop_center.py --sweep`), EyeCrowd kept as the held-out check:

- Centre: the point whose disk of radius 10 % of the image diagonal holds the most mass of
  q = (1 − CENTER_PRIOR)·p + CENTER_PRIOR·g, g the centred Gaussian (standard deviations a quarter of the
  height and width). If p were the fixation density this point would maximise the expected share of
  fixations within that radius — the hit rate the benchmark scores; the prior pulls ambiguous maps towards
  the middle, where photographers put the subject. Hit rates on OSIE validation (shipped FastSal-A): this
  rule 0.382 (prior weights 0 → 0.7: 0.371, 0.374, 0.378, 0.379, 0.382, 0.380, 0.372); peak of the map
  blurred by 0, 2, 5, 10 % of the diagonal 0.331, 0.346, 0.356, 0.363; centre of mass of p, p², p⁴ 0.206,
  0.256, 0.298; image centre 0.178. The disk sums are computed with an FFT on the map summed into blocks of
  at most CENTER_GRID cells along the longer side.
- Crop for aspect ratio a = w:h: the largest box of that ratio inside the image, times `scale`, placed where
  it holds the most mass of q (CROP_PRIOR weight): the expected share of fixations inside, under q.
  Mean coverage of 1:1, 16:9 and 9:16 on OSIE validation: 0.8820 (prior weights 0 → 0.7: 0.8815, 0.8812,
  0.8814, 0.8820, 0.8818, 0.8786, 0.8691 — flat up to 0.4, where the prior mostly settles flat maps); mass of
  p² or p⁴ instead of p 0.8790, 0.8805; the map blurred by 2, 5, 10 % of the diagonal 0.8814, 0.8780, 0.8673;
  the centred crop 0.8317. Window sums come from a summed-area table (integral image): all placements in
  O(H·W). Ties go to the placement nearest the image centre (a uniform map gives the centred crop).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from fastsal_tf.imaging import centered_gaussian

CENTER_PRIOR = 0.4  # weight of the centred Gaussian in the centre's mass (chosen on OSIE validation)
CENTER_RADIUS = 0.1  # disk radius as a fraction of the image diagonal
CENTER_GRID = 256  # the disk search runs on the map summed into at most this many blocks along the long side
CROP_PRIOR = 0.3  # weight of the centred Gaussian in the crops' mass (chosen on OSIE validation)
PRIOR_SIGMA = 0.25  # standard deviations of the centred Gaussian, fractions of the height and width


@dataclasses.dataclass(frozen=True)
class Aspect:
    """An aspect ratio width:height (positive finite numbers); `label` is "W:H" and `tag` "WxH"
    (for file names)."""

    width: float
    height: float

    @property
    def ratio(self) -> float:
        return self.width / self.height

    @property
    def label(self) -> str:
        return f"{self.width:g}:{self.height:g}"

    @property
    def tag(self) -> str:
        return f"{self.width:g}x{self.height:g}"


def parse_aspect(value) -> Aspect:
    """An Aspect from "W:H" text (e.g. "16:9", "1.91:1"), a (w, h) pair or an Aspect. Raises ValueError
    saying what is wrong for anything else (a zero, negative or non-finite part, a missing colon)."""
    if isinstance(value, Aspect):
        return value
    if isinstance(value, str):
        parts = value.strip().split(":")
        if len(parts) != 2:
            raise ValueError(f"aspect ratio {value!r} is not of the form W:H (e.g. 16:9)")
        try:
            width, height = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"aspect ratio {value!r} is not of the form W:H with numbers W and H") from None
    else:
        try:
            width, height = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"aspect ratio {value!r} is neither W:H text nor a (width, height) pair") from None
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        raise ValueError(f"aspect ratio {value!r}: width and height must be positive numbers")
    return Aspect(width, height)


def map_size(image_hw: tuple[int, int], content_hw: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the map the decisions are taken on, for an image of image_hw whose content fills
    content_hw pixels of the network frame. This is image_hw scaled down with its aspect ratio kept, until
    the side with the larger network-to-image ratio matches the network's content there. An image already
    that small keeps its own size, so the map is never upsampled beyond the image."""
    height, width = int(image_hw[0]), int(image_hw[1])
    scale = min(1.0, max(content_hw[0] / height, content_hw[1] / width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def crop_size(image_hw: tuple[int, int], aspect: Aspect, scale: float = 1.0) -> tuple[int, int]:
    """(height, width) in pixels of the largest box of the aspect ratio inside an image of image_hw,
    times scale (0 < scale ≤ 1). The side that fills the image (times scale) is rounded to whole pixels
    and the other one is rounded from it, so the box's ratio is within half a pixel of the asked one.
    Raises ValueError when a side would be shorter than one pixel."""
    height, width = int(image_hw[0]), int(image_hw[1])
    if not 0 < scale <= 1:
        raise ValueError(f"crop scale must be in (0, 1], got {scale}")
    if width >= height * aspect.ratio:  # height-limited: the box is as tall as the image
        box_h = round(height * scale)
        box_w = min(round(box_h * aspect.ratio), width)
    else:
        box_w = round(width * scale)
        box_h = min(round(box_w / aspect.ratio), height)
    if box_h < 1 or box_w < 1:
        raise ValueError(f"a {width}x{height} image is too small for a {aspect.label} crop"
                         f"{'' if scale == 1 else f' at scale {scale:g}'} (a side under one pixel)")
    return box_h, box_w


def summed_area_table(mass: np.ndarray) -> np.ndarray:
    """(H + 1, W + 1) float64 table T of mass (H, W): T[y, x] = mass[:y, :x].sum()."""
    table = np.zeros((mass.shape[0] + 1, mass.shape[1] + 1), np.float64)
    np.cumsum(mass, axis=0, dtype=np.float64, out=table[1:, 1:])
    np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
    return table


def table_window_sums(table: np.ndarray, box_hw: tuple[int, int]) -> np.ndarray:
    """Sums over every box_hw=(h, w) window from a summed-area table of an (H, W) array:
    (H − h + 1, W − w + 1) float64, entry [y, x] for the window with top-left corner (x, y)."""
    box_h, box_w = box_hw
    return table[box_h:, box_w:] - table[:-box_h, box_w:] - table[box_h:, :-box_w] + table[:-box_h, :-box_w]


def window_sums(mass: np.ndarray, box_hw: tuple[int, int]) -> np.ndarray:
    """Sums of mass (H, W) over every box_hw window (see table_window_sums)."""
    return table_window_sums(summed_area_table(mass), box_hw)


def best_position(sums: np.ndarray, tolerance: float = 0.0) -> tuple[int, int]:
    """(y0, x0) of the largest window sum; among those within `tolerance` of it, the one nearest the
    middle of the placements."""
    ys, xs = np.nonzero(sums >= sums.max() - tolerance)
    middle_y, middle_x = (sums.shape[0] - 1) / 2, (sums.shape[1] - 1) / 2
    nearest = int(np.argmin((ys - middle_y) ** 2 + (xs - middle_x) ** 2))
    return int(ys[nearest]), int(xs[nearest])


def best_window(mass: np.ndarray, box_hw: tuple[int, int]) -> tuple[int, int]:
    """(y0, x0) of the box_hw window holding the most mass; among windows within 1e-9 of the total mass
    of the best, the one nearest the centre."""
    return best_position(window_sums(mass, box_hw), 1e-9 * max(float(np.abs(mass).sum()), 1e-300))


def _prior_profiles(shape_hw: tuple[int, int], sigma: float = PRIOR_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """The centred Gaussian's (imaging.centered_gaussian with standard deviations sigma·H and sigma·W) row
    and column profiles: g = gy ⊗ gx."""
    gy = centered_gaussian((shape_hw[0], 1), sigma, np.float64)[:, 0]
    gx = centered_gaussian((1, shape_hw[1]), sigma, np.float64)[0]
    return gy, gx


def _profile_window_sums(profile: np.ndarray, size: int) -> np.ndarray:
    cumulative = np.concatenate([[0.0], np.cumsum(profile)])
    return cumulative[size:] - cumulative[:-size]


def _map_table(prob: np.ndarray) -> tuple[np.ndarray, float]:
    """The summed-area table of prob and 1 / its total (a map without positive mass counts as uniform)."""
    table = summed_area_table(np.asarray(prob))
    total = float(table[-1, -1])
    if not (np.isfinite(total) and total > 0):
        table = summed_area_table(np.ones(prob.shape))
        total = float(table[-1, -1])
    return table, 1.0 / total


def crop_boxes(prob: np.ndarray, image_hw: tuple[int, int], aspects, scale: float = 1.0,
               prior: float = CROP_PRIOR, prior_sigma: float = PRIOR_SIGMA) -> list[tuple[int, int, int, int]]:
    """One box (x0, y0, x1, y1) per aspect (see parse_aspect) for an image of image_hw=(H, W), placed to
    hold the most mass of q = (1 − prior)·p + prior·g (see the module docstring; g's standard deviations are
    prior_sigma·H and prior_sigma·W). prob: (h, w) map at the image's size or smaller (then the search runs
    at the map's size and the box is scaled back).
    The window sums of g are products of 1-D window sums of its row and column profiles."""
    height, width = int(image_hw[0]), int(image_hw[1])
    aspects = [parse_aspect(aspect) for aspect in aspects]
    sizes = [crop_size((height, width), aspect, scale) for aspect in aspects]
    table, inverse_total = _map_table(prob)
    map_h, map_w = table.shape[0] - 1, table.shape[1] - 1
    gy, gx = _prior_profiles((map_h, map_w), prior_sigma)
    boxes = []
    for box_h, box_w in sizes:
        search_h = min(map_h, max(1, round(box_h * map_h / height)))
        search_w = min(map_w, max(1, round(box_w * map_w / width)))
        sums = table_window_sums(table, (search_h, search_w)) * ((1 - prior) * inverse_total)
        if prior > 0:
            sums += prior * np.outer(_profile_window_sums(gy, search_h), _profile_window_sums(gx, search_w))
        y0, x0 = best_position(sums, 1e-9)
        if (map_h, map_w) != (height, width):
            y0 = min(max(round(y0 * height / map_h), 0), height - box_h)
            x0 = min(max(round(x0 * width / map_w), 0), width - box_w)
        boxes.append((x0, y0, x0 + box_w, y0 + box_h))
    return boxes


def _block_sums(mass: np.ndarray, block: int) -> np.ndarray:
    """mass (H, W) — or a 1-D profile (H,) — summed over blocks of block (×block) cells, zero-padded at
    the end."""
    mass = np.asarray(mass, np.float64)
    counts = [-(-size // block) for size in mass.shape]
    padded = np.zeros([count * block for count in counts], np.float64)
    padded[tuple(slice(0, size) for size in mass.shape)] = mass
    shape = [value for count in counts for value in (count, block)]
    return padded.reshape(shape).sum(axis=tuple(range(1, 2 * len(counts), 2)))


def disk_kernel(radius: float) -> np.ndarray:
    """(2R + 1, 2R + 1) float64 indicator of the cells within `radius` of the middle one, R = ⌊radius⌋."""
    reach = int(math.floor(radius))
    offsets = np.arange(-reach, reach + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius ** 2).astype(np.float64)


def attention_center(prob: np.ndarray, image_hw: tuple[int, int], prior: float = CENTER_PRIOR,
                     radius: float = CENTER_RADIUS, grid: int = CENTER_GRID) -> tuple[float, float]:
    """(x, y): the centre of the disk of radius `radius`·diagonal holding the most mass of
    q = (1 − prior)·p + prior·g (see the module docstring), in pixels of an image of image_hw=(H, W).
    prob: (h, w) map at the image's size or smaller. The search runs on blocks of ⌈max(h, w) / grid⌉²
    pixels; the answer is the middle of the best block."""
    height, width = int(image_hw[0]), int(image_hw[1])
    prob = np.asarray(prob)
    map_h, map_w = prob.shape
    block = max(1, math.ceil(max(map_h, map_w) / grid))
    cells = _block_sums(prob, block)
    total = cells.sum()
    if not (np.isfinite(total) and total > 0):
        cells, total = _block_sums(np.ones(prob.shape), block), float(map_h * map_w)
    cells *= (1 - prior) / total
    if prior > 0:
        gy, gx = _prior_profiles((map_h, map_w))
        cells += prior * np.outer(_block_sums(gy, block), _block_sums(gx, block))
    from scipy import signal  # imported here: `fastsal predict` does not need it

    kernel = disk_kernel(radius * math.hypot(map_h, map_w) / block)
    sums = signal.fftconvolve(cells, kernel, mode="same")
    row, col = np.unravel_index(int(np.argmax(sums)), sums.shape)
    # The middle of the block's pixels inside the map (pixel centres at integers), then to image pixels.
    x_map = (col * block + min((col + 1) * block, map_w)) / 2 - 0.5
    y_map = (row * block + min((row + 1) * block, map_h)) / 2 - 0.5
    return ((x_map + 0.5) * width / map_w - 0.5, (y_map + 0.5) * height / map_h - 0.5)
