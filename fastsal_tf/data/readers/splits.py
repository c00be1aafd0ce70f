"""Fixed split files: JSON objects {"<split>": [names...], ...} shipped in fastsal_tf/data or given by path."""

from __future__ import annotations

import importlib.resources
import json
import pathlib

from fastsal_tf.data.errors import DatasetError


def load_split(packaged: str, splits: tuple[str, ...], path: str | pathlib.Path | None = None) -> dict[str, list[str]]:
    """{split: [names]} for every name in splits, from path or else the packaged fastsal_tf/data/<packaged>.

    Raises DatasetError naming the file when it is not JSON, lacks a split, or two splits share a name.
    """
    if path is None:
        text = importlib.resources.files("fastsal_tf.data").joinpath(packaged).read_text()
        source = f"fastsal_tf/data/{packaged}"
    else:
        path = pathlib.Path(path)
        if not path.is_file():
            raise DatasetError(path, "split file not found")
        text, source = path.read_text(), str(path)
    try:
        data = json.loads(text)
        split = {name: [str(f) for f in data[name]] for name in splits}
    except (ValueError, KeyError, TypeError) as error:
        raise DatasetError(source, f"not a split file with the splits {', '.join(splits)} ({error!r})") from error
    seen: dict[str, str] = {}
    for name, members in split.items():
        for member in members:
            if member in seen:
                raise DatasetError(source, f"{member!r} is in both {seen[member]!r} and {name!r}")
            seen[member] = name
    return split
