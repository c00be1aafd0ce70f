"""What an exported FastSal .tflite looks like (see fastsal_tf.export.litert for the signature) and the
export errors: names shared by conversion, flatbuffer editing, calibration and parity."""

from __future__ import annotations

MODES = ("fp32", "fp16", "dynamic", "int8")
INPUT_DTYPES = ("uint8", "float32")
MAP_DTYPES = ("float32", "uint8")
INPUT_NAME = "image"
SIGNATURE_KEY = "serving_default"
# Short output name (API / CLI) → tensor and signature name in the .tflite, in their order in the file.
OUTPUT_NAMES = {"map": "saliency_map", "prob": "probability_map", "logits": "logits"}
METADATA_NAME = "fastsal_metadata"
METADATA_FORMAT_VERSION = 1
DEFAULT_INPUT_SIZE = (192, 256)

# Names of the float tail ops; the int8 quantizer is told to leave them (and the graph outputs) in float.
TAIL_PREFIX = "fastsal_tail_"


class ExportError(ValueError):
    """The model cannot be exported as asked (bad argument, unsupported op, failed check)."""


class UnsupportedOpsError(ExportError):
    """The model needs ops that are not LiteRT builtins (Flex / custom)."""


class ParityError(ExportError):
    """The .tflite output does not match the Keras output within the bounds; `report` holds the numbers."""

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report
