"""A model's named outputs, which one is the saliency map, and turning it into probability maps.

Output kinds, from the output's name (`head_kind`):
  "prob"   — a probability map (e.g. "prob", "probability_map"): clipped at 0 and renormalised;
  "logits" — per-pixel logits: softmax over all pixels;
  "map"    — a sigmoid map in [0, 1] ("map", "saliency_map", "sigmoid"): p ∝ m / (1 − m), the softmax of its logit;
  None     — the name says nothing: classified from the values when used.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

KINDS = ("prob", "logits", "map")
# Preference orders for `select_output`: the predictor wants a probability map most; a teacher writing
# sigmoid-map labels wants the map most.
PREFER_PROB = ("prob", "logits", "map")
PREFER_MAP = ("map", "logits", "prob")


@dataclasses.dataclass(frozen=True)
class OutputInfo:
    """One model output: its name, shape (None for unknown sizes) and whether it is quantised."""

    name: str
    shape: tuple
    quantized: bool = False

    @property
    def kind(self) -> str | None:
        return head_kind(self.name)

    @property
    def is_map(self) -> bool:
        """An (N, h, w) or (N, h, w, 1) output, i.e. one that can be a saliency map."""
        shape = tuple(self.shape)
        return len(shape) == 3 or (len(shape) == 4 and shape[-1] == 1)


def head_kind(name: str) -> str | None:
    """'prob', 'logits' or 'map' from an output's name; None when the name says nothing."""
    name = name.lower()
    if "prob" in name:
        return "prob"
    if "logit" in name:
        return "logits"
    if "map" in name or "sal" in name or "sigmoid" in name:
        return "map"
    return None


def select_output(outputs: list[OutputInfo], prefer: tuple[str, ...] = PREFER_PROB, wanted: str = "",
                  source: str = "model", role: str = "model") -> tuple[str, str | None]:
    """(name, kind) of the saliency output among a model's outputs.

    wanted: an output name to use (checked); else the first output of the first kind in `prefer`, except
    that a quantised "prob" gives way to "logits" when there is one (an 8-bit probability map has too few
    levels). A single map-shaped output with a name that says nothing is used with kind None.
    ValueError naming `source` (and the model's `role`, e.g. "teacher") when no output fits."""
    usable = [o for o in outputs if o.is_map]
    described = ", ".join(f"{o.name} {tuple(o.shape)}" for o in outputs) or "none"
    if wanted:
        match = [o for o in outputs if o.name == wanted]
        if not match:
            raise ValueError(f"{source}: no output {wanted!r} (outputs: {described})")
        if not match[0].is_map:
            raise ValueError(f"{source}: output {wanted!r} has shape {tuple(match[0].shape)}, not a saliency map "
                             "(N, H, W[, 1])")
        return wanted, head_kind(wanted)
    if not usable:
        raise ValueError(f"{source}: no usable {role} output — a saliency map of shape (N, H, W[, 1]) is needed "
                         f"(outputs: {described})")
    by_kind = {}
    for output in usable:
        by_kind.setdefault(output.kind, output)
    if "prob" in by_kind and by_kind["prob"].quantized and "logits" in by_kind:
        return by_kind["logits"].name, "logits"
    for kind in prefer:
        if kind in by_kind:
            return by_kind[kind].name, kind
    if len(usable) == 1:
        return usable[0].name, None
    raise ValueError(f"{source}: cannot tell which output is the saliency map among {sorted(o.name for o in usable)} "
                     "(expected names with 'prob', 'logits' or 'map'; or name the output)")


def _softmax_pixels(logits: np.ndarray) -> np.ndarray:
    flat = logits.reshape(logits.shape[0], -1).astype(np.float64)
    flat -= flat.max(axis=1, keepdims=True)
    np.exp(flat, out=flat)
    flat /= flat.sum(axis=1, keepdims=True)
    return flat.reshape(logits.shape).astype(np.float32)


def to_probabilities(values: np.ndarray, kind: str | None) -> np.ndarray:
    """(N, h, w) model output of the given kind → (N, h, w) float32 maps summing to 1."""
    values = np.asarray(values, dtype=np.float32)
    if kind is None:  # classify from the values
        sums = values.reshape(values.shape[0], -1).sum(axis=1)
        in_unit = values.min() >= 0 and values.max() <= 1
        kind = "prob" if in_unit and np.allclose(sums, 1, atol=1e-2) else "map" if in_unit else "logits"
    if kind == "logits":
        return _softmax_pixels(values)
    if kind == "map":
        eps = 1e-6
        clipped = np.clip(values.astype(np.float64), eps, 1 - eps)
        return _softmax_pixels(np.log(clipped) - np.log1p(-clipped))
    probs = np.maximum(values, 0).reshape(values.shape[0], -1)
    totals = probs.sum(axis=1, keepdims=True, dtype=np.float64)
    bad = ~(totals[:, 0] > 0)
    probs = probs / np.where(totals > 0, totals, 1).astype(np.float32)
    probs[bad] = 1.0 / probs.shape[1]
    return probs.reshape(values.shape)


def squeeze_channel(values: np.ndarray) -> np.ndarray:
    """(N, h, w[, 1]) → (N, h, w); ValueError for any other shape."""
    values = np.asarray(values)
    if values.ndim == 4:
        if values.shape[-1] != 1:
            raise ValueError(f"the saliency output must have one channel, got shape {values.shape}")
        values = values[..., 0]
    if values.ndim != 3:
        raise ValueError(f"the saliency output must be (N, H, W[, 1]), got shape {values.shape}")
    return values


def to_frame(maps: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """(N, h', w') maps → (N, h, w) of the input frame (bilinear) when a model outputs at another size."""
    if maps.shape[1:3] == tuple(frame_hw):
        return maps
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(m, np.float32)).resize(
        (frame_hw[1], frame_hw[0]), Image.Resampling.BILINEAR)) for m in maps])
