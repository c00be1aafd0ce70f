"""Training set-up: distribution strategies, optimisers and schedules, layer freezing, seeding."""

from __future__ import annotations

import keras
import tensorflow as tf

from fastsal_tf.weights.imagenet import backbone_layer_names

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("paper", "cosine", "constant")
PAPER_BOUNDARY_EPOCHS = (15, 30, 60)  # lr × 0.1 at each (paper: SGD, lr 0.01, 100 epochs)
UNDECAYED_NAMES = ("bias", "gamma", "beta")  # Keras variable names never weight-decayed


def make_strategy(name="default", tpu_address=""):
    """A tf.distribute strategy by name. "mirrored": all local GPUs (or CPU); "multiworker": reads
    TF_CONFIG; "tpu": the TPU at tpu_address (empty: the local / Colab TPU)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def learning_rate(schedule, base_lr, steps_per_epoch, epochs):
    """A float or a Keras schedule over optimizer steps. "paper": ×0.1 at epochs 15, 30, 60;
    "cosine": cosine decay to 0 over the run; "constant"."""
    if schedule == "constant":
        return float(base_lr)
    if schedule == "paper":
        boundaries = [int(e * steps_per_epoch) for e in PAPER_BOUNDARY_EPOCHS]
        values = [base_lr * 0.1 ** i for i in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(base_lr, max(1, int(steps_per_epoch * epochs)))
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


class _ScaledSteps:
    """Mixin for a Keras optimizer: the step of each variable in `scaled` (Keras variables) uses
    learning rate × `scale`; the other variables use the learning rate."""

    def __init__(self, *args, scaled=(), scale=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self._scaled_ids = {id(v) for v in scaled}
        self._scale = float(scale)

    def build(self, variables):
        super().build(variables)
        self._step_scales = [self._scale if id(v) in self._scaled_ids else 1.0 for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        scale = self._step_scales[self._get_variable_index(variable)]
        return super().update_step(gradient, variable, learning_rate if scale == 1.0 else learning_rate * scale)


class ScaledStepAdam(_ScaledSteps, keras.optimizers.Adam):
    pass


class ScaledStepSGD(_ScaledSteps, keras.optimizers.SGD):
    pass


def make_optimizer(name, lr, scaled_variables=(), lr_scale=1.0, weight_decay=0.0, undecayed_variables=(),
                   ema_momentum=0.0):
    """"sgd": SGD with momentum 0.9 (the paper's optimiser); "adam": Adam. The variables in
    scaled_variables step with lr × lr_scale (e.g. a backbone fine-tuned more gently than the decoder).
    weight_decay > 0: decoupled decay, each step w ← w − lr·weight_decay·w (lr: the schedule's current rate),
    on every kernel except those in undecayed_variables; biases and BatchNorm γ / β never decay.
    ema_momentum in (0, 1): the optimiser also keeps an exponential moving average of the trainable weights,
    a ← m·a + (1 − m)·w after each step (keras.callbacks.SwapEMAWeights puts it in the model)."""
    if not lr_scale >= 0:
        raise ValueError(f"the learning-rate scale must be >= 0, got {lr_scale}")
    if not weight_decay >= 0:
        raise ValueError(f"weight decay must be >= 0, got {weight_decay}")
    if not 0 <= ema_momentum < 1:
        raise ValueError(f"the EMA momentum must be in [0, 1), got {ema_momentum}")
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    options = dict(momentum=0.9) if name == "sgd" else {}
    if weight_decay:
        options["weight_decay"] = float(weight_decay)
    if ema_momentum:
        options.update(use_ema=True, ema_momentum=float(ema_momentum))
    if lr_scale == 1.0 or not scaled_variables:
        optimizer = (keras.optimizers.SGD if name == "sgd" else keras.optimizers.Adam)(lr, **options)
    else:
        optimizer = (ScaledStepSGD if name == "sgd" else ScaledStepAdam)(lr, scaled=scaled_variables,
                                                                         scale=lr_scale, **options)
    if weight_decay:
        optimizer.exclude_from_weight_decay(var_list=list(undecayed_variables), var_names=UNDECAYED_NAMES)
    return optimizer


def backbone_layer_set():
    """Names of the MobileNetV2 backbone layers of a FastSal network."""
    return {name for pair in backbone_layer_names() for name in pair}


def backbone_variables(network):
    """The trainable variables of the MobileNetV2 backbone layers of a FastSal network."""
    encoder = backbone_layer_set()
    return [v for layer in network.layers if layer.name in encoder for v in layer.trainable_weights]


def freeze(network, backbone=False, batchnorm="backbone"):
    """Freezes the MobileNetV2 backbone (all its layers) when `backbone`, and BatchNorm layers —
    "backbone": those of the backbone, "all", or "none". A frozen BatchNorm runs in inference mode
    with its stored statistics (Keras 3), which keeps small-batch fine-tuning stable. Every other layer is
    made trainable: a model saved with frozen layers (e.g. after decoder-only training) is unfrozen."""
    if batchnorm not in ("backbone", "all", "none"):
        raise ValueError(f"batchnorm freezing must be 'backbone', 'all' or 'none', got {batchnorm!r}")
    encoder = backbone_layer_set()
    for layer in network.layers:
        in_backbone = layer.name in encoder
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        frozen = (backbone and in_backbone) or (is_bn and (batchnorm == "all" or (batchnorm == "backbone" and in_backbone)))
        layer.trainable = not frozen


def seed_everything(seed, deterministic_ops=False):
    """Seeds Python, numpy and TF; optionally makes TF ops deterministic (slower)."""
    keras.utils.set_random_seed(int(seed))
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()
