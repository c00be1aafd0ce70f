"""The console side of the programs: a progress line on stderr, keeping the C++ log lines of
TensorFlow / LiteRT off stderr, and ending on Ctrl-C / SIGTERM with one line and no traceback."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import warnings


@contextlib.contextmanager
def quiet_stderr(enabled: bool = True, python_warnings: bool = False):
    """Sends file descriptor 2 to /dev/null inside the block (C++ lines such as LiteRT's 'Created TensorFlow
    Lite XNNPACK delegate' or the MLIR converter's); python_warnings also silences Python warnings.
    Process-wide: use it only from the main thread, before workers start. enabled=False does nothing."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            if python_warnings:
                warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up lines (oneDNN, CUDA probing) kept off stderr: TF 2.21 prints
    them whatever TF_CPP_MIN_LOG_LEVEL says. Nothing happens once TensorFlow is imported. Called where a
    TensorFlow model is loaded, so that running a LiteRT model never imports TensorFlow."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with quiet_stderr():
        import tensorflow  # noqa: F401


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread while `run_interruptible` runs (a KeyboardInterrupt, so that code
    which cleans up after Ctrl-C cleans up after it too)."""


def _raise_terminated(signum, frame):
    raise Terminated


def run_interruptible(program: str, function, *args) -> int:
    """function(*args) as an exit status; Ctrl-C ends it with "<program>: interrupted" and status 130,
    SIGTERM with "<program>: terminated" and 143 (128 + the signal), without a traceback. Files being
    written are removed as the exception unwinds (common.files.atomic_path)."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    try:
        return function(*args)
    except Terminated:
        print(f"{program}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


class Progress:
    """A one-line progress display on stderr: count, percent, images/s, ETA. On a terminal it redraws in
    place (at most 5 times a second); otherwise it prints a line every 10 s. prefix starts each line;
    final_line: `close()` also prints the last count and rate (off a terminal too).

    Used as an object (`update(done, failed)`, `message(text)`, `close()`) or as a `progress(done, total)`
    callback (the library's progress hooks): it closes itself when done reaches total."""

    def __init__(self, total: int = 0, stream=None, enabled: bool = True, prefix: str = "",
                 final_line: bool = False):
        self.total = total
        self.prefix = prefix
        self.final_line = final_line
        self.done = self.failed = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.last = 0.0
        self.shown = False

    def _line(self, done: int, failed: int, final: bool = False) -> str:
        elapsed = time.perf_counter() - self.start
        processed = done + failed
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - processed) / (processed / elapsed) if processed and elapsed > 0 else 0.0
        fail = f", {failed} failed" if failed else ""
        percent = 100.0 * processed / self.total if self.total else 100.0
        if elapsed < 0.5 and not final:  # too early for a rate
            return f"{self.prefix}{processed}/{self.total} images ({percent:.0f}%){fail}"
        if final:
            return f"{self.prefix}{processed}/{self.total} images, {rate:.1f} images/s{fail}"
        return (f"{self.prefix}{processed}/{self.total} images ({percent:.0f}%), {rate:.1f} images/s, "
                f"ETA {int(eta) // 60}:{int(eta) % 60:02d}{fail}")

    def __call__(self, done: int, total: int) -> None:
        if done == 0:  # the work starts now (after loading a model, say)
            self.start = time.perf_counter()
        self.total = total
        self.update(done, 0)
        if done >= total:
            self.close()

    def update(self, done: int, failed: int) -> None:
        self.done, self.failed = done, failed
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < (0.2 if self.tty else 10.0):
            return
        self.last = now
        if self.tty:
            self.stream.write("\r\x1b[K" + self._line(done, failed))
            self.shown = True
        elif now - self.start >= 10.0:
            self.stream.write(self._line(done, failed) + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """Prints a line (an error or warning) above the progress line."""
        if self.tty and self.shown:
            self.stream.write("\r\x1b[K")
            self.shown = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self, final: bool = True) -> None:
        """Clears the progress line; with final_line (and final), prints the final count and rate instead."""
        if self.tty and self.shown:
            self.stream.write("\r\x1b[K")
            self.shown = False
        if self.enabled and self.final_line and final:
            self.stream.write(self._line(self.done, self.failed, final=True) + "\n")
            self.final_line = False  # once
        self.stream.flush()
