"""Dataset errors and the result of reading a dataset (examples plus what was skipped)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

from fastsal_tf.data.example import SaliencyExample


class DatasetError(ValueError):
    """A dataset file that cannot be used as it is; the message starts with the file's path."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def not_a_file(path: str | os.PathLike, what: str) -> DatasetError:
    """The DatasetError for a path that is no regular file: `what` ("image file") not found, a pipe or
    device, or a broken or looping symbolic link."""
    if os.path.lexists(path) and not os.path.exists(path):
        return DatasetError(path, "a broken or looping symbolic link")
    if os.path.exists(path) and not os.path.isdir(path):
        return DatasetError(path, "not a regular file (a pipe, socket or device)")
    return DatasetError(path, f"{what} not found")


@dataclasses.dataclass(frozen=True)
class Skipped:
    """One example left out by skip_bad=True: the file at fault and why."""

    path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class ReadResult:
    """Examples read from a dataset (a sequence of SaliencyExample) and the bad ones skipped.

    dropped_fixations counts fixations outside the image removed with outside="drop".
    """

    name: str
    examples: tuple[SaliencyExample, ...]
    skipped: tuple[Skipped, ...] = ()
    dropped_fixations: int = 0

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[SaliencyExample]:
        return iter(self.examples)

    def __getitem__(self, index: int) -> SaliencyExample:
        return self.examples[index]

    def summary(self) -> str:
        """One line of counts, then one line per skipped example."""
        lines = [f"{self.name}: {len(self.examples)} examples, {len(self.skipped)} skipped, "
                 f"{self.dropped_fixations} fixations outside the image dropped"]
        lines += [f"  skipped {s.path}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


class Collector:
    """Gathers examples for a reader; with skip_bad, a DatasetError inside item() skips that example."""

    def __init__(self, name: str, skip_bad: bool):
        self.name = name
        self.skip_bad = skip_bad
        self.examples: list[SaliencyExample] = []
        self.skipped: list[Skipped] = []
        self.dropped_fixations = 0

    @contextlib.contextmanager
    def item(self) -> Iterator[None]:
        """Runs one example's reading; re-raises its DatasetError unless skip_bad."""
        try:
            yield
        except DatasetError as error:
            if not self.skip_bad:
                raise
            self.skipped.append(Skipped(error.path, error.reason))

    def result(self) -> ReadResult:
        return ReadResult(self.name, tuple(self.examples), tuple(self.skipped), self.dropped_fixations)
