"""SaliencyPredictor: images in, probability maps at the original size out."""

from __future__ import annotations

import time
import warnings

import numpy as np
from PIL import Image

from fastsal_tf.imaging import check_policy
from fastsal_tf.predict import decisions, postprocess
from fastsal_tf.predict.postprocess import check_blur
from fastsal_tf.predict.errors import ImageError, SaliencyWarning
from fastsal_tf.predict.images import (DEFAULT_MAX_PIXELS, DEFAULT_MAX_SIDE, PreparedImage,
                                       prepare_image)


class SaliencyPredictor:
    """A FastSal model with its pre- and post-processing. Get one with `fastsal_tf.load_model(...)`.

    Settings (attributes, also keyword arguments of load_model):
      resize: "stretch" (default, as in the paper: the image is resized to the network input, aspect
          ratio not kept) or "letterbox" (aspect ratio kept: scaled to fit, centred, padded with black;
          the map's content region is mapped back with the inverse transform and renormalised).
      blur: Gaussian sigma in pixels at the original image size (0 = none; zero outside the image; at
          most postprocess.MAX_BLUR = 100000).
      center_bias: weight w in [0, 1]; the map becomes (1 − w)·p + w·g, g a centred Gaussian with
          standard deviations center_bias_sigma·H and center_bias_sigma·W (default 0.25), renormalised.
      max_side: size cap (default 8192 px): an image whose longest side is longer gets its map at a
          downscaled size (aspect kept, longest side = max_side) and a SaliencyWarning; None or 0 = no cap.
      max_pixels: largest decode allowed (default 2**27 pixels; JPEGs are decoded at reduced scale first,
          other formats in full). Larger images raise ImageError; None or 0 = no limit.
    Images: a path, a PIL image or an (H, W, 3) uint8 RGB array ((H, W) gray and (H, W, 4) RGBA also
    work). A float array whose values all lie in [0, 1] is read as a 0–1 image and scaled by 255 (so
    `predict_map(a / 255.0)` equals `predict_map(a)`); other float arrays are read as 0–255. EXIF
    orientation is applied for files and PIL images; maps have the upright size.
    """

    def __init__(self, backend, *, resize: str = "stretch", blur: float = 0.0, center_bias: float = 0.0,
                 center_bias_sigma: float = 0.25, max_side: int | None = DEFAULT_MAX_SIDE,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, source: str = "", resample: str = "bilinear"):
        self.backend = backend
        self.resample = resample
        self.source = source
        self.resize = check_policy(resize)
        if not 0 <= center_bias <= 1:
            raise ValueError(f"center-bias weight must be in [0, 1], got {center_bias}")
        if not center_bias_sigma > 0:
            raise ValueError(f"center_bias_sigma must be > 0, got {center_bias_sigma}")
        self.blur = check_blur(blur)
        self.center_bias = float(center_bias)
        self.center_bias_sigma = float(center_bias_sigma)
        self.max_side = size_cap(max_side, "max_side")
        self.max_pixels = size_cap(max_pixels, "max_pixels")

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the network input."""
        return tuple(self.backend.input_hw)

    def describe(self) -> str:
        return self.backend.describe()

    def __repr__(self) -> str:
        return f"SaliencyPredictor({self.describe()}, resize={self.resize!r})"

    # The three stages, also used by the batch runner (prepare and finish are thread-safe).
    def prepare(self, image, display: bool = False, name: str | None = None) -> PreparedImage:
        """Decode and make the network input (ImageError on a bad image)."""
        return prepare_image(image, self.input_size, self.resize, display=display, max_side=self.max_side,
                             max_pixels=self.max_pixels, name=name, resample=self.resample)

    def infer(self, prepared: list[PreparedImage]) -> np.ndarray:
        """(N, h, w) float32 network-frame probability maps for prepared images."""
        return self.backend.run(np.stack([p.net_input for p in prepared]))

    def finish(self, prepared: PreparedImage, net_map: np.ndarray,
               output_hw: tuple[int, int] | None = None) -> np.ndarray:
        """Network-frame map → float32 probability map at output_hw (default prepared.output_hw), summing to 1."""
        return postprocess.probability_to_output(net_map, prepared.placement, prepared.original_hw,
                                                 output_hw or prepared.output_hw, self.blur, self.center_bias,
                                                 self.center_bias_sigma)

    def decision_map(self, prepared: PreparedImage, net_map: np.ndarray) -> np.ndarray:
        """The float32 probability map the centre and crops are decided on, at decisions.map_size: the
        displayed size scaled down to the network's resolution."""
        return self.finish(prepared, net_map, decisions.map_size(prepared.output_hw, prepared.placement.content_hw))

    def _warn(self, prepared: PreparedImage) -> None:
        for note in prepared.notes:
            warnings.warn(f"{prepared.name}: {note}", SaliencyWarning, stacklevel=3)

    def predict_map(self, image) -> np.ndarray:
        """Probability map (H, W) float64 at the image's original (EXIF-upright) size, summing to 1."""
        return self.predict_maps([image])[0]

    def predict_maps(self, images, batch_size: int = 8) -> list[np.ndarray]:
        """predict_map for several images, run through the model in batches."""
        images = list(images)
        batch_size = max(1, int(batch_size))
        maps = []
        for start in range(0, len(images), batch_size):
            prepared = [self.prepare(image) for image in images[start:start + batch_size]]
            for item, net_map in zip(prepared, self.infer(prepared)):
                self._warn(item)
                prob = self.finish(item, net_map).astype(np.float64)
                maps.append(postprocess.normalise(prob))
        return maps

    def predict_display(self, image) -> np.ndarray:
        """Display map (H, W) uint8: the probability map scaled so that its maximum is 255 (not min-max,
        so the relative level is kept) — what `fastsal predict` writes as <stem>_saliency.png."""
        return postprocess.display_map(self.predict_map(image))

    def predict_overlay(self, image, colormap: str = postprocess.DEFAULT_COLORMAP,
                        alpha: float = postprocess.DEFAULT_ALPHA) -> Image.Image:
        """RGB PIL image: the colour-mapped display map blended over the (upright) image."""
        prepared = self.prepare(image, display=True)
        self._warn(prepared)
        prob = self.finish(prepared, self.infer([prepared])[0])
        return postprocess.overlay(prepared.display, postprocess.display_map(prob), colormap, alpha)

    def _decision_map_of(self, image) -> tuple[PreparedImage, np.ndarray]:
        prepared = self.prepare(image)
        self._warn(prepared)
        return prepared, self.decision_map(prepared, self.infer([prepared])[0])

    def predict_center(self, image) -> tuple[float, float]:
        """(x, y) attention centre in pixels of the displayed image (0-based floats, pixel centres at
        integers): the disk of radius 10 % of the diagonal holding the most saliency mass (with a weak centre
        prior). See fastsal_tf.predict.decisions for the method and why."""
        prepared, prob = self._decision_map_of(image)
        return decisions.attention_center(prob, prepared.original_hw)

    def predict_crops(self, image, aspects, scale: float = 1.0) -> list[tuple[int, int, int, int]]:
        """One box (x0, y0, x1, y1) per aspect ratio ("16:9" or (16, 9)), integer pixels of the displayed
        image, x1 / y1 exclusive: the largest box of that ratio inside the image, times scale (0 < scale ≤ 1),
        placed to hold the most saliency mass (see fastsal_tf.predict.decisions). A string is a comma-separated
        list ("1:1,16:9"). Raises ValueError for a bad aspect or scale, ImageError for a bad image or one too
        small for a ratio."""
        if isinstance(aspects, str):
            aspects = aspects.split(",")
        aspects = [decisions.parse_aspect(aspect) for aspect in aspects]
        if not 0 < scale <= 1:
            raise ValueError(f"crop scale must be in (0, 1], got {scale}")
        prepared, prob = self._decision_map_of(image)
        try:
            return decisions.crop_boxes(prob, prepared.original_hw, aspects, scale)
        except ValueError as error:
            raise ImageError(prepared.name, str(error)) from None

    def timed_infer(self, prepared: list[PreparedImage]) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        maps = self.infer(prepared)
        return maps, time.perf_counter() - start


def size_cap(value, name: str) -> int | None:
    """A size cap (max_side, max_pixels) as an int, None for no cap (None or 0); ValueError naming it when
    negative or not a whole number."""
    if value is None:
        return None
    try:
        whole = not isinstance(value, bool) and int(value) == value and value >= 0
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise ValueError(f"{name} must be a whole number >= 0 (0 or None: no cap), got {value!r}")
    return int(value) or None
