"""Helpers of the prediction tests (tests/test_predict*.py): a stub LiteRT model, synthetic images, the CLI."""

from __future__ import annotations

import pathlib
import warnings

import numpy as np
from PIL import Image

from fastsal_tf.cli import main

HW = (64, 64)


def make_stub_tflite(path, hw=HW, outputs=("logits", "probability_map", "saliency_map"), int8=False):
    """A LiteRT model whose logits are mean(RGB)/16 (float or full-int8), with named signature outputs."""
    import tensorflow as tf

    height, width = hw

    class Stub(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((1, height, width, 3), tf.float32, name="image")])
        def serve(self, image):
            logits = tf.reduce_mean(image, -1, keepdims=True) / 16.0
            prob = tf.reshape(tf.nn.softmax(tf.reshape(logits, (1, -1))), (1, height, width, 1))
            heads = {"logits": logits, "probability_map": prob, "saliency_map": tf.sigmoid(logits)}
            return {name: heads.get(name, logits) for name in outputs}

    module = Stub()
    saved = pathlib.Path(path).with_suffix(".savedmodel")
    tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serve})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    if int8:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.uniform(0, 255, (1, height, width, 3)).astype(np.float32)]
                                                     for _ in range(4))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pathlib.Path(path).write_bytes(converter.convert())
    return pathlib.Path(path)


def bright_spot(height, width, box, path=None, fmt="PNG"):
    """Black image with a white box (y0, y1, x0, x1)."""
    array = np.zeros((height, width, 3), np.uint8)
    y0, y1, x0, x1 = box
    array[y0:y1, x0:x1] = 255
    if path is not None:
        Image.fromarray(array).save(path, fmt)
    return array


def noise(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def flat_jpeg(width, height):
    """Bytes of a valid baseline grayscale JPEG of a flat grey, built without holding the pixels: one-symbol
    Huffman tables (DC diff 0 → '0', AC EOB → '0') make every 8×8 block two zero bits. Sides multiple of 8."""
    assert width % 8 == 0 and height % 8 == 0 and (width * height // 64) % 4 == 0

    def segment(marker, payload):
        return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload

    one_symbol = bytes([1] + [0] * 15) + b"\x00"
    header = b"\xff\xd8" + segment(0xDB, b"\x00" + bytes([1] * 64))
    header += segment(0xC0, b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x01\x01\x11\x00")
    header += segment(0xC4, b"\x00" + one_symbol) + segment(0xC4, b"\x10" + one_symbol)
    header += segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    return header + bytes(width * height // 64 // 4) + b"\xff\xd9"


def run_cli(args, capsys):
    code = main(["predict", *map(str, args)])
    return code, capsys.readouterr().err
