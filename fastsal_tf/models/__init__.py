"""FastSal Keras models: MobileNetV2 taps, FastSal-A / FastSal-C decoders, the hint-loss head."""

from fastsal_tf.models.fastsal import (DEFAULT_INPUT_SHAPE, HEADS, TF_NATIVE, TORCH_COMPATIBLE, VARIANTS,
                                       build_fastsal, build_hint_model, count_conv_macs, count_parameters,
                                       describe)

__all__ = ["DEFAULT_INPUT_SHAPE", "HEADS", "TF_NATIVE", "TORCH_COMPATIBLE", "VARIANTS", "build_fastsal",
           "build_hint_model", "count_conv_macs", "count_parameters", "describe"]
