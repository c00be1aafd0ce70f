"""Errors and warnings of saliency prediction."""

from __future__ import annotations

import os


class ModelNotFoundError(FileNotFoundError):
    """The model asked for is not there: a shipped model missing from this install, or a missing file."""


class ImageError(ValueError):
    """An input image that cannot be used (unreadable, corrupt, truncated, unsupported or too large).
    The message starts with the image's name; `path` and `reason` are kept apart."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class SaliencyWarning(UserWarning):
    """Something the caller should know about one image, e.g. an output written below the original size
    because the image is larger than the size cap."""
