"""The optional OpenVINO backend (`pip install fastsal-tf[openvino]`): a .tflite export run by OpenVINO's CPU
plugin, which reads LiteRT flatbuffers directly. LiteRT stays the reference (and the phone path); this
backend is checked against it (tests/test_backend_choice.py).

Precision: "f32" (default) asks OpenVINO for float32 inference, so a float export gives LiteRT's maps; "auto"
leaves OpenVINO's own choice, which is bf16 on processors with AVX-512 BF16 / AMX (faster, about 3
significant digits).
"""

from __future__ import annotations

import os
import pathlib
import threading

import numpy as np

from fastsal_tf.runtime.backends import Backend, _fastsal_metadata, output_names
from fastsal_tf.runtime.outputs import PREFER_PROB, OutputInfo

PRECISIONS = ("f32", "auto")
INSTALL_HINT = "pip install 'fastsal-tf[openvino]'"


class MissingBackendError(ValueError):
    """An optional runtime package that a backend needs is not installed."""


def import_openvino():
    """The openvino module, or MissingBackendError saying how to install it."""
    try:
        import openvino
    except ImportError:
        raise MissingBackendError(f"the OpenVINO backend needs the openvino package, which is not installed "
                                  f"({INSTALL_HINT})") from None
    return openvino


def openvino_available() -> bool:
    try:
        import_openvino()
    except MissingBackendError:
        return False
    return True


class OpenVINOBackend(Backend):
    """A .tflite file (fixed (1, H, W, 3) input) compiled for OpenVINO's CPU plugin with `num_threads`
    inference threads (default all cores) and a latency hint. One image per call; calls from several
    threads take turns on one infer request (OpenVINO parallelises inside)."""

    kind = "openvino"
    batch_limit = 1

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None, *, precision: str = "f32",
                 prefer: tuple[str, ...] = PREFER_PROB, wanted: str = "", role: str = "model"):
        if precision not in PRECISIONS:
            raise ValueError(f"OpenVINO precision must be one of {PRECISIONS}, got {precision!r}")
        openvino = import_openvino()
        self.path = self.source = os.fspath(path)
        self.num_threads = int(num_threads or os.cpu_count() or 1)
        self.precision = precision
        core = openvino.Core()
        try:
            model = core.read_model(self.path)
        except RuntimeError as error:
            raise ValueError(f"{self.path}: OpenVINO cannot read the model ({str(error).splitlines()[0]})") from None
        if len(model.inputs) != 1:
            raise ValueError(f"{self.path}: expected one image input, got {len(model.inputs)}")
        shape = model.inputs[0].get_partial_shape()
        if shape.is_dynamic or len(shape) != 4 or shape[3].get_length() != 3 or shape[0].get_length() != 1:
            raise ValueError(f"{self.path}: expected an input of shape (1, H, W, 3), got {shape}")
        self.input_hw = (shape[1].get_length(), shape[2].get_length())
        self.input_dtype = np.dtype(model.inputs[0].get_element_type().to_dtype())
        self.metadata = _fastsal_metadata(self.path)
        config = {"INFERENCE_NUM_THREADS": self.num_threads, "PERFORMANCE_HINT": "LATENCY"}
        if precision == "f32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        compiled = core.compile_model(model, "CPU", config)
        litert = _litert_outputs(self.path)
        self._by_name, self._quantization = {}, {}
        for output in compiled.outputs:  # OpenVINO names outputs by tensor and returns quantised ones raw
            name, quantization = litert.get(output.get_any_name(), (output.get_any_name(), (0.0, 0)))
            self._by_name[name], self._quantization[name] = output, quantization
        self.outputs = [OutputInfo(name, tuple(output.get_partial_shape().to_shape()), bool(self._quantization[name][0]))
                        for name, output in self._by_name.items()]
        self._choose(prefer, wanted, role)
        self._output = self._by_name[self.output_name]
        scale, zero_point = self._quantization[self.output_name]
        self._scale, self._zero_point = np.float32(scale or 1.0), np.float32(zero_point if scale else 0.0)
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()

    def _input(self, frame: np.ndarray) -> np.ndarray:
        """(h, w, 3) RGB 0–255 frame → the (1, h, w, 3) input (rounded and clipped for an integer input)."""
        if np.issubdtype(self.input_dtype, np.integer) and frame.dtype != self.input_dtype:
            info = np.iinfo(self.input_dtype)
            frame = np.clip(np.round(frame), info.min, info.max)
        return np.ascontiguousarray(frame, dtype=self.input_dtype)[None]

    def _forward(self, frames):
        maps = []
        with self._lock:
            for frame in frames:
                self._request.infer({0: self._input(frame)})
                values = np.array(self._request.get_tensor(self._output).data, dtype=np.float32)
                maps.append((values - self._zero_point) * self._scale)
        return np.concatenate(maps, axis=0)

    def describe(self) -> str:
        return (f"OpenVINO {pathlib.Path(self.path).name} ({self.precision}), input {self.input_hw[0]}x"
                f"{self.input_hw[1]} {self.input_dtype.name}, output {self.output_name!r}")


def _litert_outputs(path: str) -> dict[str, tuple[str, tuple[float, int]]]:
    """{tensor name: (the name LiteRTBackend gives that output, its (scale, zero point))}: signature names,
    and the quantisation of quantised outputs (scale 0: not quantised)."""
    from ai_edge_litert.interpreter import Interpreter

    from fastsal_tf.common.console import quiet_stderr

    with quiet_stderr():
        interpreter = Interpreter(model_path=path)
    names = output_names(interpreter)
    return {d["name"]: (names[d["index"]], tuple(d["quantization"])) for d in interpreter.get_output_details()}
