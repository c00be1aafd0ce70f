"""Export of FastSal models to LiteRT (.tflite) with parity reports and embedded metadata, and
latency benchmarks of the exported models."""

from fastsal_tf.export.litert import (MODES, OUTPUT_NAMES, PARITY_BOUNDS, ExportError, ExportResult, ParityError,
                                      UnsupportedOpsError, describe_tflite, export_tflite, list_ops, read_metadata,
                                      run_tflite)

__all__ = ["MODES", "OUTPUT_NAMES", "PARITY_BOUNDS", "ExportError", "ExportResult", "ParityError",
           "UnsupportedOpsError", "describe_tflite", "export_tflite", "list_ops", "read_metadata", "run_tflite"]
