"""FastSal Keras models: MobileNetV2 taps, FastSal-A / FastSal-C decoders, the hint-loss head.

Importing this package registers FastSal and its layers with Keras: after `import fastsal_tf.models`,
`keras.saving.load_model(path)` loads any .keras file the project writes."""

from fastsal_tf.models.fastsal import (DEFAULT_INPUT_SHAPE, HEADS, TF_NATIVE, TORCH_COMPATIBLE, VARIANTS, FastSal,
                                       build_fastsal, build_hint_model, count_conv_macs, count_parameters,
                                       describe, rebuild)
from fastsal_tf.models.multiscale import build_multiscale, multiscale_sizes

__all__ = ["DEFAULT_INPUT_SHAPE", "HEADS", "TF_NATIVE", "TORCH_COMPATIBLE", "VARIANTS", "FastSal", "build_fastsal",
           "build_hint_model", "build_multiscale", "count_conv_macs", "count_parameters", "describe", "multiscale_sizes",
           "rebuild"]
