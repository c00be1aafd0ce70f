"""Export of FastSal models to LiteRT (.tflite) with parity reports and embedded metadata, and
latency benchmarks of the exported models.

Modules by concern: `litert` (export_tflite: checks, conversion, writing), `graph` (the Keras side),
`calibration` (full-int8 calibration and bias correction), `flatbuffer` (reading / editing .tflite files,
metadata), `parity` (running a .tflite, comparing it with Keras), `spec` (names and errors), `options`
(the `fastsal export` settings), `gpu_compat` (the GPU delegate's op rules), `images`, `benchmark`."""

from fastsal_tf.export.flatbuffer import list_ops, read_metadata
from fastsal_tf.export.litert import ExportResult, export_tflite
from fastsal_tf.export.parity import PARITY_BOUNDS, describe_tflite, run_tflite
from fastsal_tf.export.spec import MODES, OUTPUT_NAMES, ExportError, ParityError, UnsupportedOpsError

__all__ = ["MODES", "OUTPUT_NAMES", "PARITY_BOUNDS", "ExportError", "ExportResult", "ParityError",
           "UnsupportedOpsError", "describe_tflite", "export_tflite", "list_ops", "read_metadata", "run_tflite"]
