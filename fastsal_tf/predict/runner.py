"""The `fastsal predict` job: many image files → saliency PNGs, overlays and .npy maps, in parallel.

Inputs: files (tried whatever their suffix), folders (image files directly inside; all depths with
recursive=True; hidden files skipped) and glob patterns (`*`, `?`, `[…]`, `**`). The output folder is not
read back as input when it lies below an input folder (e.g. `fastsal predict . -r` with the default
./saliency); when it is the input folder itself, its files are inputs, except the maps and overlays an earlier
run wrote (marked with PREDICT_MARK: a PNG text chunk, a JPEG comment), so the same command can run again
(`fastsal crop` passes its own test of what it wrote, crop_files.written_by_crop, as `is_output`).
Outputs for an input `<stem>.<ext>`, in the output folder — mirroring subfolders below a folder input:
  <stem>_saliency.png  grayscale, original size: probability map scaled so its maximum is 255 (lossless)
  <stem>_overlay.jpg   colour map blended over the image, JPEG quality 90 (unless overlay=False);
                       <stem>_overlay.png with overlay_format="png"
  <stem>_saliency.npy  float64 probability map summing to 1 (npy=True)
Two inputs with the same output name (a.jpg, a.png) get `<stem>_<ext>` names (a_png_saliency.png); an output
that would replace an input file makes the whole job refuse to start. An image's outputs are written as a
set: all appear together (atomically) or none.

Parallelism: LiteRT runs each image start to end (decode → model → map → PNG) on one of `jobs` threads, each
with its own single-threaded interpreter; Keras decodes on `jobs` threads, runs batches of `batch_size` on
the calling thread, and maps/encodes on the threads.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import glob
import os
import pathlib
import sys
import threading
import time

import numpy as np

from fastsal_tf.common.files import write_all_atomic
from fastsal_tf.predict import postprocess
from fastsal_tf.predict.errors import ImageError
from fastsal_tf.common.console import Progress
from fastsal_tf.imaging import PREDICT_SUFFIXES
from fastsal_tf.predict.images import open_image_file, output_size

OUTPUT_SUFFIXES = {"saliency": "_saliency.png", "overlay": "_overlay.jpg", "overlay_png": "_overlay.png",
                   "npy": "_saliency.npy"}
# Overlay file format → output kind.
OVERLAY_KINDS = {"jpg": "overlay", "png": "overlay_png"}
STAGES = ("decode", "resize", "model", "map", "overlay", "encode")
DEFAULT_MEMORY_PIXELS = 2 ** 26
# The mark of the files `fastsal predict` writes, so that a rerun into the input folder does not take them as
# inputs: a PNG text chunk (keyword, text); JPEG overlays carry the text as their comment (COM segment).
PREDICT_MARK = ("Software", "fastsal predict")


@dataclasses.dataclass(frozen=True)
class Item:
    """One input image and the output base path (out_dir/sub/stem, without the _saliency.png suffix)."""

    source: pathlib.Path
    out_base: pathlib.Path

    def output(self, kind: str) -> pathlib.Path:
        return self.out_base.with_name(self.out_base.name + OUTPUT_SUFFIXES[kind])


@dataclasses.dataclass
class Summary:
    total: int
    done: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    results: dict = dataclasses.field(default_factory=dict)  # Item → what a custom `write` returned
    notes: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @property
    def images_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def failure_text(self, limit: int = 10) -> str:
        parts = [f"{name} ({reason})" for name, reason in self.failed[:limit]]
        more = f", and {len(self.failed) - limit} more" if len(self.failed) > limit else ""
        return f"{len(self.failed)} of {self.total} images failed: " + ", ".join(parts) + more


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def _inside(path: pathlib.Path, folder: pathlib.Path | None) -> bool:
    if folder is None:
        return False
    try:
        path.resolve().relative_to(folder)
        return True
    except ValueError:
        return False


def written_by_predict(path: pathlib.Path) -> bool:
    """Whether path is an output of `fastsal predict`: an <stem>_saliency.png or _overlay.png with the mark in
    a text chunk, or an <stem>_overlay.jpg with the mark as its comment."""
    if path.name.endswith(OUTPUT_SUFFIXES["overlay"]):
        return postprocess.jpeg_comment(path) == PREDICT_MARK[1]
    if not path.name.endswith((OUTPUT_SUFFIXES["saliency"], OUTPUT_SUFFIXES["overlay_png"])):
        return False
    return postprocess.png_text(path).get(PREDICT_MARK[0]) == PREDICT_MARK[1]


def _folder_images(folder: pathlib.Path, recursive: bool, skip: pathlib.Path | None,
                   is_output=written_by_predict) -> list[pathlib.Path]:
    """Image files in folder (sorted; all depths when recursive), leaving out hidden files, the files
    is_output(path) says the command wrote, and the folder `skip` (the output folder) unless it is `folder`
    itself."""
    if skip is not None and folder.resolve() == skip:
        skip = None
    found = []
    walker = os.walk(folder) if recursive else [(str(folder), [], [e.name for e in os.scandir(folder)])]
    for root, dirs, files in walker:
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _inside(pathlib.Path(root, d), skip))
        for name in sorted(files):
            path = pathlib.Path(root, name)
            if (not name.startswith(".") and path.suffix.lower() in PREDICT_SUFFIXES and path.is_file()
                    and not _inside(path, skip) and not is_output(path)):
                found.append(path)
    return found


def collect_inputs(paths, out_dir, recursive: bool = False, kinds=("saliency", "overlay"),
                   is_output=written_by_predict) -> tuple[list[Item], list[tuple[str, str]]]:
    """Expands the command's PATH arguments into Items (sorted per argument, duplicates dropped) and the
    arguments that matched nothing, as (name, reason). out_dir None: the command writes no files (items'
    out_base then lie in "."), so no folder is left out as the output folder. Files in folders and glob
    matches that is_output(path) marks as the command's own outputs (default: `fastsal predict`'s) are
    left out; files named one by one are kept. Raises ValueError when an output of `kinds` would replace
    an input file."""
    skip = pathlib.Path(out_dir).resolve() if out_dir is not None else None
    out_dir = pathlib.Path(out_dir if out_dir is not None else ".")
    sources: list[tuple[pathlib.Path, pathlib.Path]] = []  # (file, output path relative to out_dir, no suffix)
    missing = []
    for text in map(os.fspath, paths):
        path = pathlib.Path(text)
        if not text:
            missing.append(("''", "an empty path"))
        elif path.is_dir():
            for file in _folder_images(path, recursive, skip, is_output):
                rel = file.relative_to(path)
                sources.append((file, rel.parent / rel.stem))
        elif path.exists() or not _has_magic(text):
            if path.exists():
                sources.append((path, pathlib.Path(path.stem)))
            else:
                missing.append((text, "a broken or looping symbolic link" if os.path.lexists(path)
                                else "no such file or folder"))
        else:
            matches = sorted(glob.glob(text, recursive=True))
            files = []
            for match in map(pathlib.Path, matches):
                if match.is_dir():
                    files += [(f, pathlib.Path(f.stem)) for f in _folder_images(match, recursive, skip, is_output)]
                elif ((match.parent.resolve() == skip or not _inside(match, skip))
                      and not (match.is_file() and is_output(match))):  # a pipe is not opened here
                    files.append((match, pathlib.Path(match.stem)))
            if not files:
                missing.append((text, "no files match this pattern"))
            sources += files
    seen, taken, items = set(), set(), []
    for file, rel in sources:
        key = file.resolve()
        if key in seen:
            continue
        seen.add(key)
        candidate = rel
        if str(candidate).casefold() in taken:
            candidate = rel.with_name(f"{rel.name}_{file.suffix.lstrip('.').lower() or 'file'}")
            number = 2
            while str(candidate).casefold() in taken:
                candidate = rel.with_name(f"{rel.name}_{file.suffix.lstrip('.').lower() or 'file'}_{number}")
                number += 1
        taken.add(str(candidate).casefold())
        items.append(Item(file, out_dir / candidate))
    for item in items:
        for kind in kinds:
            target = item.output(kind).resolve()
            if target in seen:
                raise ValueError(f"refusing to run: the output {item.output(kind)} (for {item.source}) would "
                                 f"overwrite an input image; choose another --out folder")
    return items, missing


def start_summary(items: list[Item], missing: list[tuple[str, str]], command: str, stream=None) -> Summary | None:
    """Reports the PATH arguments that matched nothing (collect_inputs) and the inputs renamed because
    another has the same name on stderr, and returns the job's Summary; None, after saying so, when there
    is no image to process."""
    stream = stream or sys.stderr
    for name, reason in missing:
        print(f"{command}: skipped {name}: {reason}", file=stream)
    for item in items:
        if item.out_base.name != item.source.stem:
            print(f"{command}: note: {item.source} is written as {item.out_base.name}_*: another input has the "
                  f"same name", file=stream)
    summary = Summary(total=len(items) + len(missing), failed=list(missing))
    if not items:
        found = summary.failure_text() if missing else "no image files in the folders given"
        print(f"{command}: no images to process ({found})", file=stream)
        return None
    return summary


def _write_outputs(predictor, prepared, net_map, item: Item, overlay: bool, npy: bool, colormap: str,
                   compress_level: int, overlay_format: str) -> tuple[dict[str, float], None]:
    timings = dict(prepared.timings)
    start = time.perf_counter()
    prob = predictor.finish(prepared, net_map)
    shown = postprocess.display_map(prob)
    mapped = time.perf_counter()
    files = {item.output("saliency"): postprocess.encode_png(shown, compress_level, PREDICT_MARK)}
    encoded = time.perf_counter()
    timings["map"] = mapped - start
    timings["encode"] = encoded - mapped
    if overlay:
        blended = postprocess.overlay(prepared.display, shown, colormap)
        blended_at = time.perf_counter()
        if overlay_format == "png":
            files[item.output("overlay_png")] = postprocess.encode_png(blended, compress_level, PREDICT_MARK)
        else:
            files[item.output("overlay")] = postprocess.encode_jpeg(blended, comment=PREDICT_MARK[1])
        timings["overlay"] = blended_at - encoded
        timings["encode"] += time.perf_counter() - blended_at
    write_start = time.perf_counter()
    if npy:
        files[item.output("npy")] = postprocess.encode_npy(postprocess.normalise(prob.astype(np.float64)))
    write_all_atomic(files)  # the image's outputs appear together or not at all
    timings["encode"] += time.perf_counter() - write_start
    return timings, None


class _Budget:
    """Output pixels of the images in flight, at most `capacity` together (one image larger than that runs
    alone): bounds memory when several huge images meet several threads."""

    def __init__(self, capacity: int):
        self.capacity = max(1, int(capacity))
        self.used = 0
        self.condition = threading.Condition()

    def acquire(self, amount: int, block: bool = True) -> bool:
        amount = min(max(1, amount), self.capacity)
        with self.condition:
            while self.used + amount > self.capacity:
                if not block:
                    return False
                self.condition.wait()
            self.used += amount
            return True

    def release(self, amount: int) -> None:
        amount = min(max(1, amount), self.capacity)
        with self.condition:
            self.used -= amount
            self.condition.notify_all()


def _output_pixels(path: pathlib.Path, max_side: int | None) -> int:
    """Output pixels of an image from its header (1 when it cannot be read: decoding will report why)."""
    try:
        image = open_image_file(os.fspath(path))
    except Exception:  # noqa: BLE001
        return 1
    try:
        height, width = output_size((image.height, image.width), max_side)
    finally:
        image.close()
    return height * width


def run(predictor, items: list[Item], *, overlay: bool = True, npy: bool = False, batch_size: int = 8,
        jobs: int | None = None, colormap: str = postprocess.DEFAULT_COLORMAP, compress_level: int = 1,
        overlay_format: str = "jpg", progress: Progress | None = None, summary: Summary | None = None,
        memory_pixels: int = DEFAULT_MEMORY_PIXELS, write=None, command: str = "fastsal predict") -> Summary:
    """Runs the job; per-image failures are recorded in the summary (never raised). overlay_format: "jpg"
    (<stem>_overlay.jpg, default) or "png" (<stem>_overlay.png); compress_level: zlib level of the PNGs.
    memory_pixels bounds
    the output pixels of the images in flight (default 2**26: one 8192x8192 image, ~1.5 GB).
    write: instead of the saliency outputs, write(predictor, prepared, net_map, item) → (stage timings,
    result) runs for each image (on the worker threads); results go to summary.results[item]. command
    names the job in messages."""
    if overlay_format not in OVERLAY_KINDS:
        raise ValueError(f"overlay format must be one of {sorted(OVERLAY_KINDS)}, got {overlay_format!r}")
    jobs = max(1, min(int(jobs or os.cpu_count() or 1), len(items)))  # one image: one thread, all cores
    summary = summary or Summary(total=len(items))
    progress = progress or Progress(len(items), enabled=False)
    backend = predictor.backend
    budget = _Budget(memory_pixels)
    start = time.perf_counter()

    def reserve(item: Item, block: bool = True) -> int | None:
        amount = _output_pixels(item.source, predictor.max_side)
        return amount if budget.acquire(amount, block) else None

    def prepare(item: Item, amount: int):
        try:
            return predictor.prepare(item.source, display=overlay, name=str(item.source))
        except BaseException:
            budget.release(amount)
            raise

    def finish(item: Item, prepared, net_map, amount: int):
        try:
            if write is not None:
                return write(predictor, prepared, net_map, item), prepared.notes
            return (_write_outputs(predictor, prepared, net_map, item, overlay, npy, colormap, compress_level,
                                   overlay_format), prepared.notes)
        finally:
            budget.release(amount)

    def record(item: Item, future: cf.Future) -> None:
        try:
            (timings, result), notes = future.result()
        except ImageError as error:
            summary.failed.append((str(item.source), error.reason))
            progress.message(f"{command}: skipped {item.source}: {error.reason}")
        except Exception as error:  # noqa: BLE001 — one bad image must not stop the job
            reason = f"{type(error).__name__}: {error}"
            summary.failed.append((str(item.source), reason))
            progress.message(f"{command}: skipped {item.source}: {reason}")
        else:
            summary.done += 1
            if result is not None:
                summary.results[item] = result
            for stage, seconds in timings.items():
                summary.timings[stage] = summary.timings.get(stage, 0.0) + seconds
            for note in notes:
                summary.notes.append(f"{item.source}: {note}")
                progress.message(f"{command}: warning: {item.source}: {note}")
        progress.update(summary.done, len(summary.failed))

    def harvest(pending: dict, block: bool) -> None:
        if pending:
            done, _ = cf.wait(list(pending), timeout=None if block else 0, return_when=cf.FIRST_COMPLETED)
            for future in done:
                record(pending.pop(future), future)

    pool = cf.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="fastsal-predict")
    try:
        if getattr(backend, "per_thread", False):
            # LiteRT: each image start to end on one thread, one single-threaded interpreter per thread.
            if hasattr(backend, "set_num_threads"):
                backend.set_num_threads(max(1, (os.cpu_count() or 1) // jobs))

            def whole(item: Item, amount: int):
                prepared = prepare(item, amount)
                try:
                    model_start = time.perf_counter()
                    net_map = backend.run(prepared.net_input[None])[0]
                    prepared.timings["model"] = time.perf_counter() - model_start
                except BaseException:
                    budget.release(amount)
                    raise
                return finish(item, prepared, net_map, amount)

            pending: dict = {}
            for item in items:
                while len(pending) >= 2 * jobs:
                    harvest(pending, block=True)
                amount = reserve(item, block=False)
                while amount is None:  # wait for images in flight to finish
                    harvest(pending, block=True)
                    amount = reserve(item, block=not pending)
                pending[pool.submit(whole, item, amount)] = item
            while pending:
                harvest(pending, block=True)
        else:
            # Keras: decode on the threads, batches through the model here, map and encode on the threads.
            batch_size = max(1, int(batch_size))
            lookahead = 2 * batch_size + jobs
            queue_in = collections.deque()
            source = collections.deque(items)
            finishing: dict = {}
            batch = []

            def fill() -> None:
                while len(queue_in) < lookahead and source:
                    amount = reserve(source[0], block=False)
                    if amount is None:
                        return
                    item = source.popleft()
                    queue_in.append((item, amount, pool.submit(prepare, item, amount)))

            def run_batch() -> None:
                nonlocal batch
                net_maps, seconds = predictor.timed_infer([p for _, p, _ in batch])
                for (item, prepared, amount), net_map in zip(batch, net_maps):
                    prepared.timings["model"] = seconds / len(batch)
                    finishing[pool.submit(finish, item, prepared, net_map, amount)] = item
                batch = []

            fill()
            while queue_in or source:
                if not queue_in:  # the budget is used up by images being finished: wait for them
                    if batch:
                        run_batch()
                    harvest(finishing, block=True)
                    fill()
                    if not queue_in and not finishing:
                        amount = reserve(source[0])
                        item = source.popleft()
                        queue_in.append((item, amount, pool.submit(prepare, item, amount)))
                    continue
                item, amount, future = queue_in.popleft()
                fill()
                try:
                    batch.append((item, future.result(), amount))
                except Exception:  # noqa: BLE001 — recorded by record()
                    record(item, future)
                if batch and (len(batch) == batch_size or not queue_in):
                    run_batch()
                    harvest(finishing, block=False)
                    while len(finishing) > lookahead:
                        harvest(finishing, block=True)
            if batch:
                run_batch()
            while finishing:
                harvest(finishing, block=True)
    except BaseException:  # e.g. Ctrl-C: drop the queued images, let the running ones end (no partial files)
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
        raise
    pool.shutdown(wait=True)
    summary.seconds = time.perf_counter() - start
    progress.close()
    return summary
