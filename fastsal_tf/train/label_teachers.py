"""Saliency teachers for pseudo-labelling (see fastsal_tf.train.pseudo_label for what they may be): a model
run through a fastsal_tf.runtime Backend, a folder of precomputed maps, an ensemble of models, or a model
teacher averaged with its label of the mirrored image; and
`output_to_label`, which turns a teacher's raw output into a label of kind "map" or "prob"."""

from __future__ import annotations

import hashlib
import os
import pathlib

import numpy as np

from fastsal_tf.data.errors import DatasetError
from fastsal_tf.data.images import read_gray
from fastsal_tf.imaging import IMAGE_SUFFIXES, normalize_map
from fastsal_tf.runtime.outputs import PREFER_MAP, PREFER_PROB, to_probabilities
from fastsal_tf.runtime.resolve import is_saved_model, load_backend

MAP_SUFFIXES = IMAGE_SUFFIXES + (".npy",)
_OUTPUT_PREFERENCE = {"map": PREFER_MAP, "prob": PREFER_PROB}


def output_to_label(values, output_kind, label_kind):
    """(h, w) raw teacher output of kind "map" / "logits" / "prob" / None (classified from its values)
    → float64 label of label_kind (see the module docstring)."""
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("the teacher's output has NaN or Inf values")
    if label_kind == "prob":
        return to_probabilities(values[None].astype(np.float32), output_kind)[0].astype(np.float64)
    if output_kind is None:
        output_kind = "map" if values.min() >= 0 and values.max() <= 1 else "logits"
    if output_kind == "logits":
        return 1.0 / (1.0 + np.exp(-values))
    if output_kind == "prob":
        values = np.maximum(values, 0)
        return values / values.max() if values.max() > 0 else np.ones_like(values)
    return np.clip(values, 0.0, 1.0)


class ModelTeacher:
    """A model teacher: a runtime Backend (Keras, SavedModel or LiteRT) whose chosen output gives the labels."""

    def __init__(self, backend):
        self.backend = backend
        self.input_hw = backend.input_hw
        self.output_name = backend.output_name
        self.output_kind = backend.output_kind
        self.batch_limit = backend.batch_limit

    def label(self, frames, label_kind):
        """(N, H, W, 3) float32 RGB 0–255 frames → N float64 labels of label_kind."""
        return [output_to_label(v, self.output_kind, label_kind) for v in self.backend.raw(frames)]


class MapFolderTeacher:
    """Precomputed maps in a folder, matched to the images by file stem."""

    input_hw = None
    output_name = "precomputed"
    output_kind = "map"
    batch_limit = None

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.maps = {p.stem: p for p in sorted(self.folder.iterdir()) if p.suffix.lower() in MAP_SUFFIXES}
        if not self.maps:
            raise ValueError(f"{folder}: the teacher folder has no maps (image files or .npy) and is no SavedModel")

    def label_for(self, image_id, label_kind):
        path = self.maps.get(image_id)
        if path is None:
            raise DatasetError(self.folder / image_id, "no precomputed teacher map with this stem")
        if path.suffix.lower() == ".npy":
            try:
                values = np.load(path).astype(np.float64)
            except (OSError, ValueError) as error:
                raise DatasetError(path, f"unreadable .npy map ({error})") from error
            values = values[..., 0] if values.ndim == 3 and values.shape[-1] == 1 else values
        else:
            values = read_gray(path).astype(np.float64) / 255.0
        if values.ndim != 2 or not np.all(np.isfinite(values)) or values.min() < 0:
            raise DatasetError(path, "a teacher map must be a 2-D array of finite non-negative values")
        if label_kind == "prob":
            if not values.sum() > 0:
                raise DatasetError(path, "an all-zero map is no probability map")
            return normalize_map(values)
        if values.max() > 1:
            raise DatasetError(path, f"a 'map' label must lie in [0, 1], max is {values.max():g}")
        return values


class EnsembleTeacher:
    """The mean label of several model teachers that take the same input frame."""

    output_name = "ensemble"
    output_kind = None

    def __init__(self, members, sources):
        frames = {tuple(m.input_hw) for m in members}
        if len(frames) > 1:
            raise ValueError(f"{','.join(sources)}: ensemble members take different input frames "
                             f"{sorted(frames)}; use teachers of one input size")
        self.members = members
        self.sources = sources
        self.input_hw = members[0].input_hw
        limits = [m.batch_limit for m in members if m.batch_limit]
        self.batch_limit = min(limits) if limits else None

    def label(self, frames, label_kind):
        per_member = [m.label(frames, label_kind) for m in self.members]
        shapes = {tuple(labels[0].shape) for labels in per_member}
        if len(shapes) > 1:
            raise ValueError(f"{','.join(self.sources)}: ensemble members give labels of different sizes "
                             f"{sorted(shapes)}")
        return [np.mean(labels, axis=0) for labels in zip(*per_member)]


class FlipAveragedTeacher:
    """Test-time flip averaging: the mean of a model teacher's label of the frames and the mirrored label of
    the mirrored frames (saliency is nearly mirror-symmetric; the average removes some of the noise)."""

    def __init__(self, teacher):
        if isinstance(teacher, MapFolderTeacher):
            raise ValueError("flip averaging needs a model teacher, not a folder of maps")
        self.teacher = teacher
        self.input_hw = teacher.input_hw
        self.batch_limit = teacher.batch_limit

    def label(self, frames, label_kind):
        plain = self.teacher.label(frames, label_kind)
        mirrored = self.teacher.label(np.ascontiguousarray(frames[:, :, ::-1]), label_kind)
        return [(a + b[:, ::-1]) / 2 for a, b in zip(plain, mirrored)]


def _file_version(path):
    path = pathlib.Path(path)
    file = path / "saved_model.pb" if path.is_dir() else path
    if not file.is_file():
        return ""
    digest = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()[:16]}"


def teacher_sources(spec):
    """The teacher paths in a `teacher` setting: one, or an ensemble's members separated by commas."""
    sources = [s.strip() for s in os.fspath(spec).split(",")]
    if len(sources) > 1 and (len(sources) != len(set(sources)) or not all(sources)):
        raise ValueError(f"{spec}: an ensemble lists each teacher once, separated by commas")
    return sources


def teacher_provenance(spec):
    """Default (name, version) of a teacher: its file stem (a folder: its name) and the sha256 of its file; an
    ensemble is named "ensemble:" + its members' "<folder>/<stem>" joined by "+", its version hashes theirs."""
    paths = [pathlib.Path(s) for s in teacher_sources(spec)]
    if len(paths) == 1:
        path, = paths
        return (path.name if path.is_dir() else path.stem), _file_version(path)
    versions = [_file_version(p) for p in paths]
    name = "ensemble:" + "+".join(f"{p.parent.name}/{p.name if p.is_dir() else p.stem}" for p in paths)
    digest = hashlib.sha256(" ".join(versions).encode()).hexdigest()[:16]
    return name, (f"sha256:{digest}" if all(versions) else "")


def load_map_teacher(path, label_kind="prob", output="", input_size=(192, 256)):
    """A saliency teacher from a .keras / .tflite file, a SavedModel directory, a folder of maps, or several
    model teachers separated by commas (an EnsembleTeacher)."""
    sources = teacher_sources(path)
    if len(sources) > 1:
        folders = [s for s in sources if pathlib.Path(s).is_dir() and not is_saved_model(s)]
        if folders:
            raise ValueError(f"{', '.join(folders)}: a folder of maps cannot be an ensemble member (only models)")
        return EnsembleTeacher([load_map_teacher(s, label_kind, output, input_size) for s in sources], sources)
    source = os.fspath(path)
    file = pathlib.Path(source)
    if file.is_dir() and not is_saved_model(file):
        return MapFolderTeacher(file)
    if not file.exists():
        raise ValueError(f"{source}: teacher not found")
    if not file.is_dir() and file.suffix.lower() not in (".keras", ".tflite"):
        raise ValueError(f"{source}: a teacher must be a .keras or .tflite file, a SavedModel directory or a "
                         "folder of maps")
    backend, _ = load_backend(source, prefer=_OUTPUT_PREFERENCE[label_kind], wanted=output, role="teacher",
                              flexible_size=tuple(input_size))
    return ModelTeacher(backend)
