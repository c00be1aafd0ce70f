"""Backends: a model that takes (N, h, w, 3) RGB 0–255 frames and names its outputs.

Every backend exposes `input_hw`, `outputs` (a list of OutputInfo: name, shape, quantised or not), the
output it uses (`output_name`, `output_kind`, chosen with `select_output` at construction, see
fastsal_tf.runtime.outputs) and two calls:
  raw(frames)  → (N, h', w') float32 values of that output (dequantised), for teachers and the authors' protocol;
  run(frames)  → (N, h, w) float32 probability maps at the frame size, each summing to 1, for the predictor.
A new runtime (e.g. OpenVINO) subclasses Backend and implements `_forward`.
"""

from __future__ import annotations

import os
import pathlib
import queue
import threading
import warnings

import numpy as np

from fastsal_tf.common.console import quiet_stderr
from fastsal_tf.predict.errors import SaliencyWarning
from fastsal_tf.runtime.outputs import PREFER_PROB, OutputInfo, select_output, squeeze_channel, to_frame, to_probabilities

DEFAULT_INPUT_HW = (192, 256)


class Backend:
    """Base of the backends. Subclasses set input_hw, outputs and source, call `_choose`, and implement
    `_forward(frames) -> (N, h', w'[, 1]) array of the chosen output` and `describe()`."""

    kind = ""
    per_thread = False  # True: run one image per call on each worker thread (interpreters are per thread)
    batch_limit: int | None = None  # the most frames one `_forward` call takes, None: any
    source = ""
    input_hw: tuple[int, int] = DEFAULT_INPUT_HW
    outputs: list[OutputInfo] = []
    output_name = ""
    output_kind: str | None = None

    def _choose(self, prefer: tuple[str, ...], wanted: str, role: str) -> None:
        self.output_name, self.output_kind = select_output(self.outputs, prefer, wanted, self.source, role)

    def _forward(self, frames: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def raw(self, frames: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) RGB 0–255 frames (uint8 or float) → (N, h', w') float32 values of the chosen output,
        run batch_limit frames at a time."""
        frames = np.asarray(frames)
        step = max(1, self.batch_limit or len(frames))
        parts = [self._forward(frames[start:start + step]) for start in range(0, len(frames), step)]
        return squeeze_channel(np.asarray(np.concatenate(parts, axis=0), dtype=np.float32))

    def run(self, frames: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) frames → (N, h, w) float32 probability maps, each summing to 1."""
        return to_probabilities(to_frame(self.raw(frames), self.input_hw), self.output_kind)

    def describe(self) -> str:
        raise NotImplementedError


def _frame_size(shape, fixed_only: tuple | None, flexible: tuple, source: str) -> tuple[int, int]:
    """(h, w) of an (N, H, W, 3) input shape: the model's own when fixed (checked against `fixed_only`, a
    size the caller insists on), else `fixed_only` or `flexible`."""
    shape = tuple(shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"{source}: expected one (N, H, W, 3) RGB image input, got {shape}")
    height, width = shape[1:3]
    if height is None or width is None:
        return tuple(int(n) for n in (fixed_only or flexible))
    if fixed_only is not None and tuple(fixed_only) != (height, width):
        raise ValueError(f"{source} has a fixed input size {height}x{width}; "
                         f"cannot run it at {fixed_only[0]}x{fixed_only[1]}")
    return int(height), int(width)


def named_outputs(model) -> dict:
    """{name: symbolic tensor} of a Keras model's outputs (dict outputs by key, else by output_names)."""
    output = model.output
    if isinstance(output, dict):
        return dict(output)
    tensors = list(output) if isinstance(output, (list, tuple)) else [output]
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != len(tensors):
        names = [f"output_{i}" for i in range(len(tensors))]
    return dict(zip(names, tensors))


class KerasBackend(Backend):
    """A Keras model with one (N, H, W, 3) RGB 0–255 input. Batched; runs on the calling thread (TensorFlow
    parallelises inside). input_size: the size to run a flexible-size model at, and to insist on for a fixed
    one (ValueError when it differs); flexible_size: the size for a flexible model when input_size is None."""

    kind = "keras"

    def __init__(self, model, input_size: tuple[int, int] | None = None, source: str = "", *,
                 prefer: tuple[str, ...] = PREFER_PROB, wanted: str = "", role: str = "model",
                 flexible_size: tuple[int, int] = DEFAULT_INPUT_HW):
        import tensorflow as tf

        self.source = source or model.name
        try:
            inputs, tensors = model.inputs, named_outputs(model)
        except AttributeError:  # e.g. a Sequential model saved before it was built
            raise ValueError(f"{self.source}: a Keras model without a defined input and output, not a saliency "
                             "model") from None
        if len(inputs) != 1:
            raise ValueError(f"{self.source}: expected one image input, got {len(inputs)}")
        self.input_hw = _frame_size(inputs[0].shape, input_size, flexible_size, self.source)
        self.model = model
        self.outputs = [OutputInfo(name, tuple(tensor.shape)) for name, tensor in tensors.items()]
        self._choose(prefer, wanted, role)
        index = list(tensors).index(self.output_name)
        is_dict = isinstance(model.output, dict)

        def forward(images):
            outputs = model(images, training=False)
            if is_dict:
                return tf.cast(outputs[self.output_name], tf.float32)
            if isinstance(outputs, (list, tuple)):
                return tf.cast(outputs[index], tf.float32)
            return tf.cast(outputs, tf.float32)

        self._fn = tf.function(forward, input_signature=[tf.TensorSpec([None, *self.input_hw, 3], tf.float32)])

    def _forward(self, frames):
        return self._fn(np.ascontiguousarray(frames, dtype=np.float32)).numpy()

    def describe(self) -> str:
        return f"Keras {self.model.name} ({self.source or 'in memory'}), input {self.input_hw[0]}x{self.input_hw[1]}"


class SavedModelBackend(Backend):
    """A SavedModel directory's serving_default signature with one (N, H, W, 3) RGB 0–255 image input
    (integer inputs get rounded values)."""

    kind = "savedmodel"

    def __init__(self, path: str | os.PathLike, input_size: tuple[int, int] | None = None, *,
                 prefer: tuple[str, ...] = PREFER_PROB, wanted: str = "", role: str = "model",
                 flexible_size: tuple[int, int] = DEFAULT_INPUT_HW):
        import tensorflow as tf

        self.source = os.fspath(path)
        try:
            self._loaded = tf.saved_model.load(self.source)  # keeps the signature's variables alive
            self._signature = self._loaded.signatures["serving_default"]
        except (OSError, KeyError, ValueError) as error:
            raise ValueError(f"{self.source}: cannot load the SavedModel's serving_default signature "
                             f"({error})") from error
        _, inputs = self._signature.structured_input_signature
        if len(inputs) != 1:
            raise ValueError(f"{self.source}: expected one image input, the signature takes {sorted(inputs)}")
        (self._input_name, spec), = inputs.items()
        self.input_hw = _frame_size(spec.shape.as_list() if spec.shape.rank else [], input_size, flexible_size,
                                    self.source)
        self._dtype = spec.dtype
        if spec.shape.rank and spec.shape[0] == 1:
            self.batch_limit = 1  # a signature with a fixed batch of one
        self.outputs = [OutputInfo(name, tuple(s.shape)) for name, s in self._signature.structured_outputs.items()]
        self._choose(prefer, wanted, role)

    def _forward(self, frames):
        import tensorflow as tf

        frames = tf.constant(np.asarray(frames, np.float32))
        images = tf.cast(tf.round(frames), self._dtype) if self._dtype.is_integer else tf.cast(frames, self._dtype)
        return tf.cast(self._signature(**{self._input_name: images})[self.output_name], tf.float32).numpy()

    def describe(self) -> str:
        return f"SavedModel {self.source}, input {self.input_hw[0]}x{self.input_hw[1]}, output {self.output_name!r}"


class LiteRTBackend(Backend):
    """A .tflite file run with ai_edge_litert's Interpreter (fixed (1, H, W, 3) input, uint8, int8 or float;
    quantised inputs and outputs handled). `metadata`: the FastSal metadata `fastsal export` embeds, None
    (with a SaliencyWarning naming the file) when the file has none. Thread-safe: each concurrent caller
    checks out its own interpreter (created on demand with `num_threads` threads each; default all cores),
    so a thread pool runs images in parallel."""

    kind = "litert"
    per_thread = True
    batch_limit = 1

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None, *,
                 prefer: tuple[str, ...] = PREFER_PROB, wanted: str = "", role: str = "model"):
        self.path = self.source = os.fspath(path)
        self.num_threads = int(num_threads or os.cpu_count() or 1)
        self._pool: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._generation = 0
        with quiet_stderr():
            interpreter = self._new_interpreter()
        self._read_details(interpreter)
        self.metadata = _fastsal_metadata(self.path)
        self._choose(prefer, wanted, role)
        self._output = self._by_name[self.output_name]
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
        names = output_names(interpreter)
        if len(inputs) != 1:
            raise ValueError(f"{self.path}: expected one image input, got {len(inputs)}")
        shape = [int(v) for v in inputs[0]["shape"]]
        if len(shape) != 4 or shape[-1] != 3:
            raise ValueError(f"{self.path}: expected an input of shape (1, H, W, 3), got {tuple(shape)}")
        self.input_hw = (shape[1], shape[2])
        self._input = inputs[0]
        self.input_dtype = np.dtype(self._input["dtype"])
        self._by_name = {names[d["index"]]: d for d in outputs}
        self.outputs = [OutputInfo(name, tuple(int(v) for v in d["shape"]), bool(d["quantization"][0]))
                        for name, d in self._by_name.items()]

    def _quantize_input(self, frame: np.ndarray) -> np.ndarray:
        """One (h, w, 3) RGB 0–255 frame → the (1, h, w, 3) input tensor (quantised and rounded for integer inputs)."""
        dtype = self.input_dtype
        if np.issubdtype(dtype, np.floating):
            return frame.astype(dtype)[None]
        if frame.dtype == dtype and not _rescales(self._input["quantization"]):
            return frame[None]
        scale, zero_point = self._input["quantization"]
        values = frame.astype(np.float32)
        if scale:
            values = values / np.float32(scale) + zero_point
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)[None]

    def _dequantize(self, values: np.ndarray) -> np.ndarray:
        scale, zero_point = self._output["quantization"]
        if scale:
            return (values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
        return values.astype(np.float32)

    def set_num_threads(self, num_threads: int) -> None:
        """Threads per interpreter for interpreters made from now on (existing ones are dropped when the
        number changes)."""
        with self._lock:
            if max(1, int(num_threads)) != self.num_threads:
                self.num_threads = max(1, int(num_threads))
                self._generation += 1

    def _forward(self, frames):
        try:
            generation, interpreter = self._pool.get_nowait()
            if generation != self._generation:
                raise queue.Empty
        except queue.Empty:
            generation, interpreter = self._generation, self._new_interpreter()
        try:
            maps = []
            for frame in frames:
                interpreter.set_tensor(self._input["index"], self._quantize_input(frame))
                interpreter.invoke()
                maps.append(self._dequantize(interpreter.get_tensor(self._output["index"])))
        finally:
            if generation == self._generation:
                self._pool.put((generation, interpreter))
        return np.concatenate(maps, axis=0)

    def describe(self) -> str:
        return (f"LiteRT {pathlib.Path(self.path).name}, input {self.input_hw[0]}x{self.input_hw[1]} "
                f"{self.input_dtype.name}, output {self.output_name!r}")


def output_names(interpreter) -> dict[int, str]:
    """{output tensor index: name} of a LiteRT interpreter: its signature's output names ("prob", "logits", …)
    where it has a signature, else the tensor names ("StatefulPartitionedCall:0")."""
    names = {d["index"]: d["name"] for d in interpreter.get_output_details()}
    signatures = interpreter.get_signature_list()
    if signatures:
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        for name, detail in interpreter.get_signature_runner(key).get_output_details().items():
            names[detail["index"]] = name
    return names


def _fastsal_metadata(path: str) -> dict | None:
    """The FastSal metadata of a .tflite file, or None with a SaliencyWarning naming the file."""
    from fastsal_tf.export.flatbuffer import read_metadata

    try:
        return read_metadata(path)
    except ValueError:
        warnings.warn(f"{path}: no FastSal metadata (not written by `fastsal export`): its output is taken as a "
                      "saliency map unchecked", SaliencyWarning, stacklevel=3)
        return None


def _rescales(quantization) -> bool:
    """Whether an input's (scale, zero point) changes values (anything but none or (1, 0))."""
    scale, zero_point = quantization
    return bool(scale) and (abs(scale - 1.0) > 1e-4 or zero_point != 0)
