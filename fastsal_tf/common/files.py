"""Atomic file writes: readers never see a partial file, and a failed write leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import pathlib
import threading


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yields a temporary path next to `path` (same folder, created if needed; same suffix, so writers that
    go by the suffix, like Keras' `.keras`, still work); on a clean exit it replaces `path`, on an error it
    is removed. IsADirectoryError naming `path` when it is a folder (before anything is written)."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: a folder is in the way of the file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.partial{path.suffix}")
    try:
        yield temp
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: bytes | str, fsync: bool = False) -> None:
    """Writes bytes (or UTF-8 text, newlines as given) to path atomically; fsync: flushed to disk first."""
    write_all_atomic({path: data}, fsync)


def write_all_atomic(files: dict, fsync: bool = False) -> None:
    """Writes every {path: bytes or text} to its temporary file first and replaces the targets only once all
    are written, so an error leaves every target as it was. fsync: each file is flushed to disk first."""
    with contextlib.ExitStack() as stack:
        for path, data in files.items():
            temp = stack.enter_context(atomic_path(path))
            with open(temp, "wb") as stream:
                stream.write(data.encode("utf-8") if isinstance(data, str) else data)
                if fsync:
                    stream.flush()
                    os.fsync(stream.fileno())
