"""The authors' metric pre-processing (FastSal `eval.py`), in numpy: no OpenCV needed.

    map = clip(GaussianBlur5x5(normalize_map(cv2.resize(sigmoid(logits), (W, H), INTER_AREA))), 0, 1)

Checked against OpenCV 4.x (opencv-python-headless) on float32 inputs and against the reference arrays
`evalpy_map_{2,3}` in ../shared/reference/vectors_{A,C}.npz (max abs difference ~2e-7):

- `cv2.resize(..., interpolation=INTER_AREA)`: when the image shrinks along BOTH axes (scale = src/dst ≥ 1
  for height and width), true area averaging: output pixel d covers source [d·s, (d+1)·s) and each source
  pixel weighs its overlap / min(s, n_src − d·s) (OpenCV drops slivers ≤ 1e-3 px). Otherwise (upscaling,
  or shrinking one axis while enlarging the other) OpenCV runs its bilinear code with "area" coefficients
  along BOTH axes: sx = floor(d·s), f = (d + 1) − (sx + 1)/s, f = 0 if f ≤ 0 else frac(f) (float32), the
  weights are (1 − f) on sx and f on sx + 1, and the last source pixel is repeated at the edge. For an
  enlargement this is exact area sampling: an output pixel that straddles a source-pixel boundary mixes the
  two in proportion to its overlap, every other output pixel copies one source pixel (so it is neither
  nearest-neighbour nor half-pixel bilinear). s is computed as 1 / (n_dst / n_src) in double precision,
  exactly as OpenCV does (the floor is sensitive to it).
- `normalize_map`: min-max to [0, 1]. A constant map (where eval.py would divide by zero) becomes all
  zeros here, so the metrics treat it as a constant prediction (NaN with a warning where undefined).
- `cv2.GaussianBlur(m, (5, 5), 0)`: with sigma 0 and a kernel of 7 taps or fewer OpenCV does NOT use
  its sigma formula 0.3·((k − 1)·0.5 − 1) + 0.8 = 1.1; `getGaussianKernel` returns the fixed binomial
  kernel [1, 4, 6, 4, 1] / 16 (standard deviation 1.0). A true sigma-1.1 Gaussian differs from the
  reference maps by up to 0.02. Border: BORDER_REFLECT_101 (… c b | a b c … , scipy mode "mirror").
- clip to [0, 1].
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

BLUR_KERNEL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0  # cv2.getGaussianKernel(5, 0)


@functools.lru_cache(maxsize=64)
def _area_matrix(n_src: int, n_dst: int, shrinking: bool) -> np.ndarray:
    """(n_dst, n_src) 1-D weights of cv2.resize INTER_AREA (see the module docstring)."""
    inv_scale = n_dst / n_src
    scale = 1.0 / inv_scale
    weights = np.zeros((n_dst, n_src))
    if shrinking:  # OpenCV computeResizeAreaTab
        for d in range(n_dst):
            start = d * scale
            end = start + scale
            cell = min(scale, n_src - start)
            first = int(np.ceil(start))
            last = min(int(np.floor(end)), n_src - 1)
            first = min(first, last)
            if first - start > 1e-3:
                weights[d, first - 1] += (first - start) / cell
            weights[d, first:last] += 1.0 / cell
            if end - last > 1e-3:
                weights[d, last] += min(end - last, 1.0, cell) / cell
    else:  # OpenCV's linear resize in area mode
        for d in range(n_dst):
            sx = int(np.floor(d * scale))
            fx = float(np.float32((d + 1) - (sx + 1) * inv_scale))
            fx = 0.0 if fx <= 0 else float(np.float32(fx - np.floor(fx)))
            if sx >= n_src - 1:
                sx, fx = n_src - 1, 0.0
            weights[d, sx] += 1.0 - fx
            if fx:
                weights[d, sx + 1] += fx
    weights.setflags(write=False)
    return weights


def resize_area(values, out_hw: tuple[int, int]) -> np.ndarray:
    """cv2.resize(values, (W, H), interpolation=cv2.INTER_AREA) for a 2-D float map, in float64."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"resize_area needs a non-empty (H, W) map, got shape {array.shape}")
    out_h, out_w = (int(n) for n in out_hw)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size must be positive, got {out_hw}")
    shrinking = array.shape[0] >= out_h and array.shape[1] >= out_w
    rows = _area_matrix(array.shape[0], out_h, shrinking)
    cols = _area_matrix(array.shape[1], out_w, shrinking)
    return rows @ array @ cols.T


def blur_5x5(values) -> np.ndarray:
    """cv2.GaussianBlur(values, (5, 5), 0): the binomial [1 4 6 4 1]/16 kernel on both axes, reflect-101."""
    array = np.asarray(values, dtype=np.float64)
    array = ndimage.correlate1d(array, BLUR_KERNEL, axis=0, mode="mirror")
    return ndimage.correlate1d(array, BLUR_KERNEL, axis=1, mode="mirror")


def sigmoid(logits) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, dtype=np.float64)))  # overflow-free logistic


def authors_map(values, image_hw: tuple[int, int], *, kind: str = "logits") -> np.ndarray:
    """The authors' evaluation map at image_hw = (H, W) from a network-frame output.

    kind "logits": raw network output (sigmoid applied first, as eval.py does); "sigmoid": a map already
    in [0, 1] such as sigmoid(logits) or an 8-bit map / 255 (the sigmoid step is skipped).
    Returns float64 (H, W) in [0, 1] (all zeros for a constant input). ValueError for NaN/Inf or a
    non-2-D input.
    """
    array = np.asarray(values, dtype=np.float64)
    array = np.squeeze(array) if array.ndim > 2 else array
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"expected a (h, w) network map, got shape {np.shape(values)}")
    if not np.isfinite(array).all():
        raise ValueError("network map contains NaN or Inf")
    if kind == "logits":
        array = sigmoid(array)
    elif kind != "sigmoid":
        raise ValueError(f"kind must be 'logits' or 'sigmoid', got {kind!r}")
    resized = resize_area(array, image_hw)
    low, high = resized.min(), resized.max()
    if not high > low:
        return np.zeros_like(resized)
    return np.clip(blur_5x5((resized - low) / (high - low)), 0.0, 1.0)
