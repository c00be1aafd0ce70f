"""Export of FastSal models to LiteRT (.tflite) with parity reports and embedded metadata, and
latency benchmarks of the exported models.

Modules by concern: `litert` (export_tflite: checks, conversion, writing), `graph` (the Keras side),
`calibration` (full-int8 calibration and bias correction), `flatbuffer` (reading / editing .tflite files,
metadata), `parity` (running a .tflite, comparing it with Keras), `spec` (names and errors), `options`
(the `fastsal export` settings), `gpu_compat` (the GPU delegate's op rules), `images`, `benchmark`.

The names below are imported on first use, so that reading a .tflite's metadata (`flatbuffer`, which the
LiteRT backend does) does not import TensorFlow through `litert`."""

import importlib

# Public name → the module of fastsal_tf.export that defines it.
_EXPORTS = {"list_ops": "flatbuffer", "read_metadata": "flatbuffer", "ExportResult": "litert",
            "export_tflite": "litert", "PARITY_BOUNDS": "parity", "describe_tflite": "parity", "run_tflite": "parity",
            "MODES": "spec", "OUTPUT_NAMES": "spec", "ExportError": "spec", "ParityError": "spec",
            "UnsupportedOpsError": "spec"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
