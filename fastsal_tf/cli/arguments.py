"""argparse value types shared by the subcommands: each checks its value and its bound once, and argparse
names the flag in the message ("argument --threads: must be an integer >= 1, got 0"); and the check of an
--out path against the file system, before any work is done (check_out_path)."""

from __future__ import annotations

import argparse
import os
import pathlib

from fastsal_tf.predict.postprocess import MAX_BLUR, check_blur


def parse_size(text, flag="--size"):
    """'192x256' → (192, 256); ValueError naming the flag otherwise."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{flag} must look like 192x256, got {text!r}") from None
    return height, width


def check_out_path(out: str | os.PathLike, folder: bool, flag: str = "--out") -> None:
    """ValueError naming the flag when `out` cannot be written: for a folder (folder=True) an existing file,
    for a file an existing folder, and either way a path below an existing file."""
    path = pathlib.Path(out)
    if folder and path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {os.fspath(out)!r} is a file, not a folder")
    if not folder and path.is_dir():
        raise ValueError(f"{flag} {os.fspath(out)!r} is a folder; give a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {os.fspath(out)!r}: {parent} is a file, not a folder")
            return


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


MODEL_HELP = ("'default' (the shipped FastSal-A, 352x480, as fp32 LiteRT: the Keras model's maps, no TensorFlow), "
              "'default-keras' (the same as Keras), 'default-int8', 'fast' / 'fast-keras' / 'fast-int8' (the "
              "192x256 FastSal-A: over 2x faster, less accurate), 'default-c', or a .keras, .tflite (LiteRT) or "
              "authors' .pth file (default: default)")
MULTISCALE_HELP = ("run the network at its own size and at 1.5x it and average the two maps: more accurate on "
                   "eye-fixation data, about 3x the compute; runs the Keras model of a shipped name (needs TensorFlow)")
FLIP_HELP = ("test-time flip averaging: also run the mirrored image and average the maps; twice the compute, "
             "slightly more accurate; runs the Keras model of a shipped name (needs TensorFlow)")
BLUR_HELP = f"Gaussian blur of the map, sigma in pixels of the original image (default 0: none; at most {MAX_BLUR:g})"
