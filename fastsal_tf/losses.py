"""FastSal training losses and streaming saliency metrics (TensorFlow, float32, differentiable).

Maps are batched NHWC tensors of shape (N, H, W, 1) (any (N, ...) shape works: each image is flattened);
y_true and y_pred must have the same shape (ValueError otherwise). Per-image values follow the numpy
definitions in `fastsal_tf.metrics` (same eps, NSS std with ddof=1, MIT min-max step in SIM) but without
resizing, and they are smoothed where those return NaN so training never sees NaN: a constant map gives
CC 0, NSS 0 and SIM 0, an image without fixations gives NSS 0.

Keras losses (per-image values, averaged over the batch by Keras; lower is better): `kld_loss`,
`cc_loss` = 1 − CC, `nss_loss` = −NSS (y_true: binary fixation map), `sim_loss` = 1 − SIM.
Streaming metrics for `model.fit` logs (per-image values averaged over the epoch): `CCMetric`,
`KLDMetric`, `NSSMetric` (y_true: binary fixation map), `SIMMetric`. All are registered under the
"fastsal" package, so models compiled with them save and load.

Distillation losses of the paper (Hu & McGuinness 2020) take the network's logits, as the authors'
code does: `hint_loss` (eq. 1), `salgan_teacher_loss` (eq. 2), `deepgaze_teacher_loss` (eq. 3).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

EPS = 2.220446049250313e-16  # MATLAB eps, as in fastsal_tf.metrics.kld
_TINY = 1e-30  # keeps denominators and square roots of degenerate (constant) maps finite

_register = keras.saving.register_keras_serializable(package="fastsal")


def _flat(x) -> tf.Tensor:
    x = tf.cast(tf.convert_to_tensor(x), tf.float32)
    return tf.reshape(x, [tf.shape(x)[0], -1])


def _pair(y_true, y_pred) -> tuple[tf.Tensor, tf.Tensor]:
    y_true, y_pred = tf.convert_to_tensor(y_true), tf.convert_to_tensor(y_pred)
    if not y_true.shape.is_compatible_with(y_pred.shape):
        raise ValueError(f"y_true has shape {y_true.shape}, y_pred {y_pred.shape}; they must match")
    return _flat(y_true), _flat(y_pred)


def _center(x: tf.Tensor) -> tf.Tensor:
    return x - tf.reduce_mean(x, axis=1, keepdims=True)


def _sum_to_one(x: tf.Tensor) -> tf.Tensor:
    return x / (tf.reduce_sum(x, axis=1, keepdims=True) + _TINY)


def cc(y_true, y_pred) -> tf.Tensor:
    """Per-image Pearson correlation of y_pred with y_true (density maps), shape (N,), in [−1, 1]."""
    t, p = _pair(y_true, y_pred)
    t, p = _center(t), _center(p)
    return tf.reduce_sum(t * p, axis=1) / tf.sqrt(
        tf.reduce_sum(t * t, axis=1) * tf.reduce_sum(p * p, axis=1) + _TINY)


def kld(y_true, y_pred) -> tf.Tensor:
    """Per-image KL(G || P) in nats, shape (N,): Σ G·log(eps + G / (P + eps)) with G, P the maps divided
    by their sums. Both maps must be non-negative (not checked in the graph: use the `map` or `prob`
    output, not logits)."""
    g, p = _pair(y_true, y_pred)
    g, p = _sum_to_one(g), _sum_to_one(p)
    return tf.reduce_sum(g * tf.math.log(EPS + g / (p + EPS)), axis=1)


def nss(y_true, y_pred) -> tf.Tensor:
    """Per-image NSS, shape (N,): mean over fixated pixels (y_true > 0) of the prediction standardised
    with its mean and its std (ddof=1). 0 for an image without fixations."""
    fixated, s = _pair(y_true, y_pred)
    fixated = tf.cast(fixated > 0, tf.float32)
    centred = _center(s)
    n_pixels = tf.cast(tf.shape(s)[1], tf.float32)
    std = tf.sqrt(tf.reduce_sum(centred * centred, axis=1, keepdims=True) / (n_pixels - 1) + _TINY)
    return tf.math.divide_no_nan(tf.reduce_sum(centred / std * fixated, axis=1), tf.reduce_sum(fixated, axis=1))


def sim(y_true, y_pred) -> tf.Tensor:
    """Per-image similarity (histogram intersection), shape (N,), in [0, 1]: Σ min(P, G) after the MIT
    normalisation (min-max, then divide by the sum, which together is (x − min) / Σ(x − min))."""
    t, p = _pair(y_true, y_pred)

    def distribution(x):
        return _sum_to_one(x - tf.reduce_min(x, axis=1, keepdims=True))

    return tf.reduce_sum(tf.minimum(distribution(t), distribution(p)), axis=1)


@_register
def kld_loss(y_true, y_pred) -> tf.Tensor:
    """Keras loss: per-image KLD (see `kld`), y_true a density map."""
    return kld(y_true, y_pred)


@_register
def cc_loss(y_true, y_pred) -> tf.Tensor:
    """Keras loss: 1 − per-image CC (see `cc`), in [0, 2]."""
    return 1.0 - cc(y_true, y_pred)


@_register
def nss_loss(y_true, y_pred) -> tf.Tensor:
    """Keras loss: −per-image NSS (see `nss`), y_true a binary fixation map."""
    return -nss(y_true, y_pred)


@_register
def sim_loss(y_true, y_pred) -> tf.Tensor:
    """Keras loss: 1 − per-image SIM (see `sim`), in [0, 1]."""
    return 1.0 - sim(y_true, y_pred)


class _PerImageMean(keras.metrics.MeanMetricWrapper):
    """Mean over all images seen in the epoch of a per-image metric function."""

    metric_fn = None
    default_name = None
    direction = "up"

    def __init__(self, name: str | None = None, dtype=None):
        super().__init__(fn=type(self).metric_fn, name=name or self.default_name, dtype=dtype)
        self._direction = self.direction  # lets callbacks with mode="auto" know which way is better

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}


@_register
class CCMetric(_PerImageMean):
    """Epoch mean of per-image CC (higher is better)."""

    metric_fn = staticmethod(cc)
    default_name = "cc"


@_register
class KLDMetric(_PerImageMean):
    """Epoch mean of per-image KLD (lower is better)."""

    metric_fn = staticmethod(kld)
    default_name = "kld"
    direction = "down"


@_register
class NSSMetric(_PerImageMean):
    """Epoch mean of per-image NSS (higher is better); y_true must be a binary fixation map."""

    metric_fn = staticmethod(nss)
    default_name = "nss"


@_register
class SIMMetric(_PerImageMean):
    """Epoch mean of per-image SIM (higher is better)."""

    metric_fn = staticmethod(sim)
    default_name = "sim"


def hint_loss(student_features: Sequence, teacher_features: Sequence) -> tf.Tensor:
    """Paper eq. 1 (FitNets-style hints): L_hint = Σ_i mean((r_i − u_i)²), a scalar.

    student_features: the adaptation-layer outputs r_i; teacher_features: the teacher feature maps u_i,
    paired by position (the paper uses four) with equal shapes. Each term is the mean squared error over
    all elements of the batch, as the authors' `nn.MSELoss()` per layer, summed over layers. No gradient
    flows into the teacher features.
    """
    if len(student_features) != len(teacher_features) or not student_features:
        raise ValueError(f"need matching non-empty feature lists, got {len(student_features)} student and "
                         f"{len(teacher_features)} teacher tensors")
    total = tf.constant(0.0)
    for i, (student, teacher) in enumerate(zip(student_features, teacher_features)):
        student = tf.cast(tf.convert_to_tensor(student), tf.float32)
        teacher = tf.stop_gradient(tf.cast(tf.convert_to_tensor(teacher), tf.float32))
        if not student.shape.is_compatible_with(teacher.shape):
            raise ValueError(f"hint {i}: student shape {student.shape} != teacher shape {teacher.shape}")
        total += tf.reduce_mean(tf.square(student - teacher))
    return total


def _bce_with_logits(targets, logits: tf.Tensor) -> tf.Tensor:
    targets, logits = _pair(targets, logits)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits))


def salgan_teacher_loss(logits, ground_truth=None, teacher_map=None, *, gt_weight: float = 1.0,
                        teacher_weight: float = 1.0) -> tf.Tensor:
    """Paper eq. 2: gt_weight·BCE(σ(logits), ground_truth) + teacher_weight·BCE(σ(logits), teacher_map).

    logits: the student's raw output (N, H, W, 1); σ(logits) is its `map` output, and BCE is computed
    from the logits for numerical stability. ground_truth and teacher_map: maps in [0, 1] of the same
    shape. Each BCE is the mean over all pixels of the batch. Pass None to switch a term off (at least
    one is needed). The teacher map gets no gradient. Returns a scalar.
    """
    if ground_truth is None and teacher_map is None:
        raise ValueError("salgan_teacher_loss needs a ground_truth, a teacher_map or both")
    total = tf.constant(0.0)
    if ground_truth is not None:
        total += gt_weight * _bce_with_logits(ground_truth, logits)
    if teacher_map is not None:
        total += teacher_weight * _bce_with_logits(tf.stop_gradient(teacher_map), logits)
    return total


def deepgaze_teacher_loss(logits, teacher_prob, *, kl_weight: float = 0.5, cos_weight: float = 0.2,
                          bce_weight: float = 0.3) -> tf.Tensor:
    """Paper eq. 3, distillation from a DeepGaze II-style probability map, a scalar:

    kl_weight·KL(T || Q) + cos_weight·(1 − cos(Q, T)) + bce_weight·BCE(σ(logits), (T − min T)/(max T − min T)),
    where Q = softmax of the logits over all pixels (the `prob` output), T = teacher_prob divided by its
    sum, KL is summed over pixels, and KL and cosine similarity are averaged over the batch; BCE is the
    mean over all pixels of the sigmoid map against the min-max-normalised teacher. Default weights
    0.5 / 0.2 / 0.3 are the authors' (their `compute_log_prob_3losses`). The teacher gets no gradient.
    """
    teacher, logits = _pair(tf.stop_gradient(teacher_prob), logits)
    target = _sum_to_one(teacher)
    log_q = tf.nn.log_softmax(logits, axis=1)
    kl = tf.reduce_sum(tf.math.xlogy(target, target) - target * log_q, axis=1)
    q = tf.exp(log_q)
    cosine = tf.reduce_sum(q * target, axis=1) / (
        tf.maximum(tf.norm(q, axis=1), 1e-8) * tf.maximum(tf.norm(target, axis=1), 1e-8))
    low = tf.reduce_min(teacher, axis=1, keepdims=True)
    scaled = tf.math.divide_no_nan(teacher - low, tf.reduce_max(teacher, axis=1, keepdims=True) - low)
    bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=scaled, logits=logits))
    return kl_weight * tf.reduce_mean(kl) + cos_weight * (1.0 - tf.reduce_mean(cosine)) + bce_weight * bce
