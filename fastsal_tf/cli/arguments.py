"""argparse value types shared by the subcommands: each checks its value and its bound once, and argparse
names the flag in the message ("argument --threads: must be an integer >= 1, got 0")."""

from __future__ import annotations

import argparse

from fastsal_tf.predict.postprocess import MAX_BLUR, check_blur


def parse_size(text, flag="--size"):
    """'192x256' → (192, 256); ValueError naming the flag otherwise."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{flag} must look like 192x256, got {text!r}") from None
    return height, width


def input_size(text):
    """--size: "HxW" → (H, W), the network input: positive multiples of 32."""
    try:
        height, width = parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like 192x256, got {text!r}") from None
    if height < 1 or width < 1 or height % 32 or width % 32:
        raise argparse.ArgumentTypeError(f"height and width must be positive multiples of 32, got {text}")
    return height, width


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None


def positive_int(text):
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def non_negative_int(text):
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def positive_float(text):
    value = _number(text, float)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def blur_sigma(text):
    """--blur: a sigma in [0, MAX_BLUR] pixels (fastsal_tf.predict.postprocess.check_blur)."""
    try:
        return check_blur(_number(text, float))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def unit_fraction(text):
    """A number in (0, 1] (e.g. a size as a fraction of the largest)."""
    value = _number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


MODEL_HELP = ("'default' (the shipped FastSal-A as fp32 LiteRT: the Keras model's maps, no TensorFlow), "
              "'default-keras' (the same as Keras), 'default-c', 'default-int8', or a .keras, .tflite (LiteRT) or "
              "authors' .pth file (default: default)")
BLUR_HELP = f"Gaussian blur of the map, sigma in pixels of the original image (default 0: none; at most {MAX_BLUR:g})"
