"""Where predictions come from: a function, a folder of precomputed maps, a model, or a fixed map.

A source is called with a SaliencyExample and returns a `Prediction(values, kind)`:
- kind "map": a saliency / probability map to score as it is (non-negative, finite; any size: the metrics
  resize it to the image with their rule, `metrics.resize_map`);
- kind "logits" or "sigmoid": a network-frame output for the authors' protocol (`authors.authors_map`).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable

import numpy as np
from PIL import Image

from fastsal_tf.imaging import MAP_SUFFIXES, centered_gaussian, normalize_map, stretch_lanczos
from fastsal_tf.metrics import resize_map

KINDS = ("map", "logits", "sigmoid")
# Preference among files of one image: exact stem before "<stem>_saliency" (what `fastsal predict` writes),
# then the order of MAP_SUFFIXES.
STEM_SUFFIXES = ("", "_saliency")
_LISTED_MISSING = 10


@dataclasses.dataclass(frozen=True)
class Prediction:
    values: np.ndarray
    kind: str = "map"


class FunctionSource:
    """predict_fn(image_path) -> (H, W) array, of the given kind ("map" by default)."""

    def __init__(self, predict_fn: Callable, kind: str = "map", name: str | None = None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.predict_fn = predict_fn
        self.kind = kind
        self.name = name or getattr(predict_fn, "__name__", "function")

    def __call__(self, example) -> Prediction:
        return Prediction(np.asarray(self.predict_fn(example.image_path)), self.kind)

    def describe(self) -> str:
        return f"function {self.name}"


def read_map_file(path: str | pathlib.Path) -> np.ndarray:
    """float64 (H, W) from a .npy array ((H, W), (H, W, 1) or (1, H, W)) or a PNG/JPEG image (grayscale
    values 0–255 or 0–65535 as stored; colour images are converted to luminance). ValueError naming the file
    when it is unreadable, not 2-D, or holds NaN/Inf."""
    path = pathlib.Path(path)
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as image:
                if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                    array = np.asarray(image)
                else:
                    array = np.asarray(image.convert("L"))
    except (OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"{path}: unreadable map ({error})") from None
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    elif array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{path}: a map must be a 2-D array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{path}: a map must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: map contains NaN or Inf")
    return array


def _full_scale(path: pathlib.Path) -> float:
    """The value that stands for 1.0 in an image map: 255 (8-bit), 65535 (16-bit), 1 (floating point)."""
    with Image.open(path) as image:
        mode = image.mode
    return 1.0 if mode == "F" else 65535.0 if mode.startswith("I") else 255.0


class MapDirectory:
    """A folder of precomputed maps, one per image, matched by image id (the file stem):
    `<id>.npy|.png|.jpg|.jpeg`, or `<id>_saliency.<same>` as written by `fastsal predict [--npy]`; the exact
    stem wins, then .npy before .png before .jpg. Only the folder itself is searched (no subfolders).

    kind: what the files hold. "map" (the MIT protocol): saliency maps, scored as they are. For the authors'
    protocol, "network": .npy files hold the network's raw logits (sigmoid applied) and image files hold the
    sigmoid map ×255 (×65535 in a 16-bit PNG; divided back, sigmoid not applied); a folder with `fastsal
    predict` PNGs (probability maps, see predict.runner.PREDICT_MARK) is refused with a ValueError.
    """

    def __init__(self, folder: str | os.PathLike, kind: str = "map"):
        if kind not in ("map", "network"):
            raise ValueError(f"kind must be 'map' or 'network', got {kind!r}")
        self.folder = pathlib.Path(folder)
        if not self.folder.is_dir():
            raise ValueError(f"{self.folder}: prediction folder not found")
        self.kind = kind
        self.name = self.folder.name or str(self.folder)
        rank = {}
        self._files: dict[str, pathlib.Path] = {}
        for path in sorted(self.folder.iterdir()):
            suffix = path.suffix.lower()
            if suffix not in MAP_SUFFIXES or not path.is_file():
                continue
            for stem_rank, tail in enumerate(STEM_SUFFIXES):
                if tail and not path.stem.endswith(tail):
                    continue
                key = path.stem[: len(path.stem) - len(tail)] if tail else path.stem
                order = (stem_rank, MAP_SUFFIXES.index(suffix))
                if key not in rank or order < rank[key]:
                    rank[key], self._files[key] = order, path
        if kind == "network":
            from fastsal_tf.predict.runner import written_by_predict

            found = next((p for p in self._files.values() if written_by_predict(p)), None)
            if found is not None:
                raise ValueError(f"{found}: a `fastsal predict` map (a probability map scaled to a maximum of 255), "
                                 "not the network's sigmoid map the authors' protocol reads; score these maps with "
                                 "--protocol mit")

    def path_for(self, image_id: str) -> pathlib.Path | None:
        return self._files.get(image_id)

    def check_complete(self, examples) -> None:
        """ValueError listing (some of) the images without a map in the folder."""
        missing = [e.id for e in examples if e.id not in self._files]
        if missing:
            shown = ", ".join(missing[:_LISTED_MISSING]) + (", ..." if len(missing) > _LISTED_MISSING else "")
            raise ValueError(f"{self.folder}: no map for {len(missing)} of {len(examples)} images: {shown} "
                             f"(expected <id>.npy/.png/.jpg or <id>_saliency.<ext>)")

    def __call__(self, example) -> Prediction:
        path = self._files.get(example.id)
        if path is None:
            raise ValueError(f"{self.folder}: no map for image {example.id!r}")
        values = read_map_file(path)
        if self.kind == "map":
            return Prediction(values, "map")
        if path.suffix.lower() == ".npy":
            return Prediction(values, "logits")
        return Prediction(values / _full_scale(path), "sigmoid")

    def describe(self) -> str:
        return f"maps in {self.folder}"


class FixedMap:
    """One map for every image (e.g. the mean training density), resized to each image (metrics rule)."""

    def __init__(self, values: np.ndarray, name: str = "center bias"):
        self.values = np.asarray(values, dtype=np.float64)
        self.name = name
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def at(self, hw: tuple[int, int]) -> np.ndarray:
        hw = (int(hw[0]), int(hw[1]))
        if hw not in self._cache:
            values = self.values if self.values.shape == hw else np.maximum(resize_map(self.values, hw), 0.0)
            self._cache = {hw: normalize_map(values)}  # keep one size: datasets are usually sorted by size
        return self._cache[hw]

    def __call__(self, example) -> Prediction:
        return Prediction(self.at((example.height, example.width)), "map")

    def describe(self) -> str:
        return self.name


class CenteredGaussian:
    """A centred Gaussian at each image's size (standard deviations 0.25·H, 0.25·W)."""

    name = "center bias"

    def at(self, hw: tuple[int, int]) -> np.ndarray:
        return centered_gaussian(hw)

    def __call__(self, example) -> Prediction:
        return Prediction(self.at((example.height, example.width)), "map")

    def describe(self) -> str:
        return "centred Gaussian (sd 0.25 H, 0.25 W)"


def _stored_rgb(path) -> np.ndarray:
    """(H, W, 3) uint8 of the image as stored (no EXIF rotation: dataset labels refer to stored pixels)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"{path}: unreadable image ({error})") from None


def _network_output(predictor):
    """A Keras runtime backend whose raw output is the network's logits (or sigmoid map), and that kind."""
    model = getattr(predictor.backend, "model", None)
    if model is None:
        raise ValueError(f"{predictor.describe()}: the authors' protocol needs the network's logits at network "
                         f"size, which this backend does not expose (supported: .keras, .pth and the shipped "
                         f"Keras models); or write the logits as <id>.npy files and evaluate that folder")
    import keras

    from fastsal_tf.runtime.backends import KerasBackend

    outputs = model.output if isinstance(model.output, dict) else {}
    layer_names = {layer.name for layer in model.layers}
    if "logits" in outputs:
        tensor, kind = outputs["logits"], "logits"
    elif "logits" in layer_names:
        tensor, kind = model.get_layer("logits").output, "logits"
    elif "map" in outputs:
        tensor, kind = outputs["map"], "sigmoid"
    elif "prob" in layer_names:
        tensor, kind = model.get_layer("prob").input, "logits"
    else:
        raise ValueError(f"{predictor.describe()}: cannot find a 'logits' or 'map' output for the authors' protocol")
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    network = keras.Model(inputs, {kind: tensor})
    return KerasBackend(network, predictor.input_size, predictor.describe(), wanted=kind), kind


def authors_network_input(image: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """The authors' predict-script preprocessing up to the network: the uint8 RGB image stretched to the
    network size with PIL LANCZOS (aspect ratio not kept). (The ImageNet mean/std normalisation is inside
    the Keras model.)"""
    return stretch_lanczos(image, input_hw)


class ModelSource:
    """A fastsal_tf.api SaliencyPredictor. Images are read as stored (no EXIF rotation), like the labels.

    protocol "mit": `predict_map` (the predictor's own pre- and post-processing; a probability map at the
    image size, summing to 1). "authors": the authors' preprocessing (`authors_network_input`: PIL LANCZOS
    stretch to the network size) and the network's raw logits at that size, before any post-processing.
    (The predictor resizes with antialiased bilinear instead, which moves the logits of a randomly
    initialised network a lot: CC 0.85 against the authors' on the reference photos.)
    """

    def __init__(self, predictor, protocol: str = "mit", name: str | None = None):
        self.predictor = predictor
        self.protocol = protocol
        self.name = name or getattr(predictor, "source", "") or "model"
        self._network = None
        if protocol == "authors":
            self._network, self._kind = _network_output(predictor)

    def __call__(self, example) -> Prediction:
        image = _stored_rgb(example.image_path)
        if self._network is None:
            return Prediction(np.asarray(self.predictor.predict_map(image), dtype=np.float64), "map")
        frame = authors_network_input(image, self.predictor.input_size)
        return Prediction(self._network.raw(frame[None])[0], self._kind)

    def describe(self) -> str:
        return self.predictor.describe()
