"""argparse value types shared by the subcommands."""

from __future__ import annotations

import argparse


def parse_size(text, flag="--size"):
    """'192x256' → (192, 256); ValueError naming the flag otherwise."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{flag} must look like 192x256, got {text!r}") from None
    return height, width


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text):
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def unit_fraction(text):
    """A number in (0, 1] (e.g. a size as a fraction of the largest)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


BLUR_HELP = "Gaussian blur of the map, sigma in pixels of the original image (default 0: none)"
