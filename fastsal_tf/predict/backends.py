"""Inference backends: a Keras model (from .keras or an imported .pth) or a LiteRT .tflite file.

Both take a batch of network frames (N, h, w, 3) uint8 RGB and return (N, h, w) float32 probability maps,
each summing to 1. Which model output is used, by name (any of them may be quantised; values are
dequantised with the tensor's scale and zero point):
  "prob" / "probability_map" — used as is (clipped at 0 and renormalised), unless it is quantised and a
                               logits output exists (an 8-bit probability map has too few levels);
  "logits"                    — softmax over all pixels, computed in numpy;
  "map" / "saliency_map"     — the sigmoid map: softmax of its logit, i.e. p ∝ m / (1 − m).
A single output with another name is classified from its values at run time.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading

import numpy as np
from PIL import Image

DEFAULT_INPUT_HW = (192, 256)
_PRIORITY = ("prob", "logits", "map")


def head_kind(name: str) -> str | None:
    """'prob', 'logits' or 'map' from an output's name; None when the name says nothing."""
    name = name.lower()
    if "prob" in name:
        return "prob"
    if "logit" in name:
        return "logits"
    if "map" in name or "sal" in name or "sigmoid" in name:
        return "map"
    return None


def choose_output(names: list[str], quantized: dict[str, bool] | None = None) -> tuple[str, str | None]:
    """(output name, kind) to use among the model's outputs (see the module docstring)."""
    quantized = quantized or {}
    kinds = {name: head_kind(name) for name in names}
    by_kind = {}
    for name in names:
        by_kind.setdefault(kinds[name], name)
    if "prob" in by_kind and quantized.get(by_kind["prob"]) and "logits" in by_kind:
        return by_kind["logits"], "logits"
    for kind in _PRIORITY:
        if kind in by_kind:
            return by_kind[kind], kind
    if len(names) == 1:
        return names[0], None
    raise ValueError(f"cannot tell which model output is the saliency map among {names} (expected names with "
                     f"'prob', 'logits' or 'map')")


def _softmax_pixels(logits: np.ndarray) -> np.ndarray:
    flat = logits.reshape(logits.shape[0], -1).astype(np.float64)
    flat -= flat.max(axis=1, keepdims=True)
    np.exp(flat, out=flat)
    flat /= flat.sum(axis=1, keepdims=True)
    return flat.reshape(logits.shape).astype(np.float32)


def to_probabilities(values: np.ndarray, kind: str | None) -> np.ndarray:
    """(N, h, w) model output of the given kind → (N, h, w) float32 maps summing to 1."""
    values = np.asarray(values, dtype=np.float32)
    if kind is None:  # classify from the values
        sums = values.reshape(values.shape[0], -1).sum(axis=1)
        in_unit = values.min() >= 0 and values.max() <= 1
        kind = "prob" if in_unit and np.allclose(sums, 1, atol=1e-2) else "map" if in_unit else "logits"
    if kind == "logits":
        return _softmax_pixels(values)
    if kind == "map":
        eps = 1e-6
        clipped = np.clip(values.astype(np.float64), eps, 1 - eps)
        return _softmax_pixels(np.log(clipped) - np.log1p(-clipped))
    probs = np.maximum(values, 0).reshape(values.shape[0], -1)
    totals = probs.sum(axis=1, keepdims=True, dtype=np.float64)
    bad = ~(totals[:, 0] > 0)
    probs = probs / np.where(totals > 0, totals, 1).astype(np.float32)
    probs[bad] = 1.0 / probs.shape[1]
    return probs.reshape(values.shape)


def _to_frame(maps: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """(N, h', w') maps → (N, h, w) of the input frame (bilinear) when a model outputs at another size."""
    if maps.shape[1:3] == tuple(frame_hw):
        return maps
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(m, np.float32)).resize(
        (frame_hw[1], frame_hw[0]), Image.Resampling.BILINEAR)) for m in maps])


def _squeeze_channel(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim == 4:
        if values.shape[-1] != 1:
            raise ValueError(f"the saliency output must have one channel, got shape {values.shape}")
        values = values[..., 0]
    if values.ndim != 3:
        raise ValueError(f"the saliency output must be (N, H, W[, 1]), got shape {values.shape}")
    return values


@contextlib.contextmanager
def quiet_stderr():
    """Keeps C++ log lines (e.g. LiteRT's 'Created TensorFlow Lite XNNPACK delegate') off stderr.
    Process-wide (file descriptor 2): use it only from the main thread, before workers start."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class KerasBackend:
    """A Keras FastSal model (any model with input (N, H, W, 3) RGB 0–255). Batched; runs on the calling
    thread (TensorFlow parallelises inside)."""

    kind = "keras"
    per_thread = False

    def __init__(self, model, input_size: tuple[int, int] | None = None, source: str = ""):
        import tensorflow as tf

        shape = model.input_shape
        if isinstance(shape, list):
            if len(shape) != 1:
                raise ValueError(f"{source or model.name}: expected one image input, got {len(shape)}")
            shape = shape[0]
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"{source or model.name}: expected an (N, H, W, 3) image input, got {shape}")
        height, width = shape[1:3]
        if height is None or width is None:
            height, width = tuple(input_size or DEFAULT_INPUT_HW)
        elif input_size is not None and tuple(input_size) != (height, width):
            raise ValueError(f"{source or model.name} has a fixed input size {height}x{width}; "
                             f"cannot run it at {input_size[0]}x{input_size[1]}")
        self.model = model
        self.input_hw = (int(height), int(width))
        self.source = source
        output = model.output
        if isinstance(output, dict):
            names = list(output)
        else:
            names = list(getattr(model, "output_names", None) or ["output"])
            if len(names) != 1 and not isinstance(output, (list, tuple)):
                names = names[:1]
        self.output_name, self.output_kind = choose_output(names)
        self._index = names.index(self.output_name)
        self._is_dict = isinstance(output, dict)
        self._fn = tf.function(self._forward, input_signature=[tf.TensorSpec([None, *self.input_hw, 3], tf.uint8)])

    def _forward(self, images):
        import tensorflow as tf

        outputs = self.model(tf.cast(images, tf.float32), training=False)
        if self._is_dict:
            return outputs[self.output_name]
        if isinstance(outputs, (list, tuple)):
            return outputs[self._index]
        return outputs

    def run(self, batch: np.ndarray) -> np.ndarray:
        values = _squeeze_channel(self._fn(np.ascontiguousarray(batch, dtype=np.uint8)).numpy())
        return to_probabilities(_to_frame(values, self.input_hw), self.output_kind)

    def describe(self) -> str:
        return f"Keras {self.model.name} ({self.source or 'in memory'}), input {self.input_hw[0]}x{self.input_hw[1]}"


class LiteRTBackend:
    """A .tflite file run with ai_edge_litert's Interpreter (fixed (1, H, W, 3) input, uint8, int8 or float).
    Thread-safe: each concurrent caller checks out its own interpreter (created on demand with
    `num_threads` threads each; default all cores), so a thread pool runs images in parallel."""

    kind = "litert"
    per_thread = True

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        self.path = os.fspath(path)
        self.num_threads = int(num_threads or os.cpu_count() or 1)
        self._pool: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._generation = 0
        with quiet_stderr():
            interpreter = self._new_interpreter()
        self._read_details(interpreter)
        self._pool.put((self._generation, interpreter))

    def _new_interpreter(self):
        from ai_edge_litert.interpreter import Interpreter

        try:
            interpreter = Interpreter(model_path=self.path, num_threads=self.num_threads)
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"{self.path}: not a valid LiteRT model ({error})") from None
        details = interpreter.get_input_details()
        if len(details) == 1 and len(details[0]["shape"]) == 4 and details[0]["shape"][0] != 1:
            interpreter.resize_tensor_input(details[0]["index"], [1, *details[0]["shape"][1:]])
        interpreter.allocate_tensors()
        return interpreter

    def _read_details(self, interpreter):
        inputs = interpreter.get_input_details()
        outputs = interpreter.get_output_details()
        names = {d["index"]: d["name"] for d in outputs}
        signatures = interpreter.get_signature_list()
        if signatures:  # signature names ("prob", "logits", …) beat tensor names ("StatefulPartitionedCall:0")
            key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
            runner = interpreter.get_signature_runner(key)
            for name, detail in runner.get_output_details().items():
                names[detail["index"]] = name
        if len(inputs) != 1:
            raise ValueError(f"{self.path}: expected one image input, got {len(inputs)}")
        shape = [int(v) for v in inputs[0]["shape"]]
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"{self.path}: expected an input of shape (1, H, W, 3), got {tuple(shape)}")
        self.input_hw = (shape[1], shape[2])
        self._input = inputs[0]
        by_name = {names[d["index"]]: d for d in outputs}
        quantized = {name: bool(d["quantization"][0]) for name, d in by_name.items()}
        self.output_name, self.output_kind = choose_output(list(by_name), quantized)
        self._output = by_name[self.output_name]
        self.input_dtype = np.dtype(self._input["dtype"])

    def _quantize_input(self, frame: np.ndarray) -> np.ndarray:
        dtype = self.input_dtype
        scale, zero_point = self._input["quantization"]
        if np.issubdtype(dtype, np.floating):
            return frame.astype(dtype)[None]
        if scale and (abs(scale - 1.0) > 1e-4 or zero_point != 0 or dtype != np.uint8):
            info = np.iinfo(dtype)
            values = np.round(frame.astype(np.float32) / np.float32(scale) + zero_point)
            return np.clip(values, info.min, info.max).astype(dtype)[None]
        return frame.astype(dtype, copy=False)[None]

    def _dequantize(self, values: np.ndarray) -> np.ndarray:
        scale, zero_point = self._output["quantization"]
        if scale:
            return (values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
        return values.astype(np.float32)

    def set_num_threads(self, num_threads: int) -> None:
        """Threads per interpreter for interpreters made from now on (existing ones are dropped)."""
        with self._lock:
            self.num_threads = max(1, int(num_threads))
            self._generation += 1

    def run(self, batch: np.ndarray) -> np.ndarray:
        try:
            generation, interpreter = self._pool.get_nowait()
            if generation != self._generation:
                raise queue.Empty
        except queue.Empty:
            generation, interpreter = self._generation, self._new_interpreter()
        try:
            maps = []
            for frame in np.asarray(batch):
                interpreter.set_tensor(self._input["index"], self._quantize_input(frame))
                interpreter.invoke()
                maps.append(self._dequantize(interpreter.get_tensor(self._output["index"])))
        finally:
            if generation == self._generation:
                self._pool.put((generation, interpreter))
        values = _squeeze_channel(np.concatenate(maps, axis=0))
        return to_probabilities(_to_frame(values, self.input_hw), self.output_kind)

    def describe(self) -> str:
        return (f"LiteRT {os.path.basename(self.path)}, input {self.input_hw[0]}x{self.input_hw[1]} "
                f"{self.input_dtype.name}, output {self.output_name!r}")
