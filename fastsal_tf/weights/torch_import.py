"""Map the authors' PyTorch FastSal state dicts onto the Keras models (exact import).

Key naming of the authors' code: `ecer.0..18` = torchvision MobileNetV2 `features`, `adaptation_layer.
layers.<i>.0` = 1×1 adaptation convs, `adp1..4.inv_block.conv.*` = FastSal-A decoder blocks, `comb.layers.
0.0` (A) / `comb.layers.0.1` (C) = the final 3×3 conv. Layouts: conv OIHW → Keras HWIO; depthwise
C1HW → HWC1; BatchNorm (weight, bias, running_mean, running_var) → (gamma, beta, mean, variance).
"""

from __future__ import annotations

import os

import numpy as np

from fastsal_tf.models import TORCH_COMPATIBLE, build_fastsal, build_hint_model
from fastsal_tf.weights.torch_checkpoint import CheckpointError, detect_variant, load_torch_checkpoint

BN_PARAMS = ("weight", "bias", "running_mean", "running_var")


def inverted_residual_keys(torch_prefix, keras_prefix, expansion=True):
    """(torch module, keras layer, kind) for one torchvision InvertedResidual."""
    if not expansion:  # features[1]: dw → project
        return [(f"{torch_prefix}.conv.0.0", f"{keras_prefix}depthwise", "dw"),
                (f"{torch_prefix}.conv.0.1", f"{keras_prefix}depthwise_BN", "bn"),
                (f"{torch_prefix}.conv.1", f"{keras_prefix}project", "conv"),
                (f"{torch_prefix}.conv.2", f"{keras_prefix}project_BN", "bn")]
    return [(f"{torch_prefix}.conv.0.0", f"{keras_prefix}expand", "conv"),
            (f"{torch_prefix}.conv.0.1", f"{keras_prefix}expand_BN", "bn"),
            (f"{torch_prefix}.conv.1.0", f"{keras_prefix}depthwise", "dw"),
            (f"{torch_prefix}.conv.1.1", f"{keras_prefix}depthwise_BN", "bn"),
            (f"{torch_prefix}.conv.2", f"{keras_prefix}project", "conv"),
            (f"{torch_prefix}.conv.3", f"{keras_prefix}project_BN", "bn")]


def layer_map(variant):
    """List of (torch module prefix, keras layer name, kind) for variant 'A', 'C' or 'pretrain'."""
    entries = [("ecer.0.0", "Conv1", "conv"), ("ecer.0.1", "bn_Conv1", "bn")]
    entries += inverted_residual_keys("ecer.1", "expanded_conv_", expansion=False)
    for k in range(2, 18):
        entries += inverted_residual_keys(f"ecer.{k}", f"block_{k - 1}_")
    entries += [("ecer.18.0", "Conv_1", "conv"), ("ecer.18.1", "Conv_1_bn", "bn")]
    entries += [(f"adaptation_layer.layers.{i}.0", f"adapt_{i}", "conv_bias") for i in range(4)]
    if variant == "A":
        for k in range(1, 5):
            entries += inverted_residual_keys(f"adp{k}.inv_block", f"dec{k}_")
        entries.append(("comb.layers.0.0", "logits", "conv_bias"))
    elif variant == "C":
        entries.append(("comb.layers.0.1", "logits", "conv_bias"))
    return entries


def torch_to_keras_arrays(kind, tensors):
    """Converts one module's torch tensors to the Keras layer's weight list."""
    if kind == "bn":
        return list(tensors)
    kernel = tensors[0]
    kernel = kernel.transpose(2, 3, 0, 1) if kind == "dw" else kernel.transpose(2, 3, 1, 0)
    return [kernel] + list(tensors[1:])


def assign_state_dict(model, state, variant, source="checkpoint"):
    """Sets every weight of `model` from the torch `state` dict. All arrays are converted and
    shape-checked before any is assigned, so a failure leaves the model untouched. Raises CheckpointError
    naming `source` and the key on a missing, unexpected or mis-shaped tensor."""
    used = set()
    assignments = []
    for torch_prefix, keras_name, kind in layer_map(variant):
        params = BN_PARAMS if kind == "bn" else ("weight", "bias") if kind == "conv_bias" else ("weight",)
        keys = [f"{torch_prefix}.{p}" for p in params]
        missing = [k for k in keys if k not in state]
        if missing:
            raise CheckpointError(f"{source}: missing key {missing[0]!r} for a FastSal-{variant} checkpoint")
        used.update(keys)
        used.add(f"{torch_prefix}.num_batches_tracked")
        layer = model.get_layer(keras_name)
        arrays = torch_to_keras_arrays(kind, [np.asarray(state[k], dtype=np.float32) for k in keys])
        for key, array, variable in zip(keys, arrays, layer.weights):
            if tuple(array.shape) != tuple(variable.shape):
                raise CheckpointError(f"{source}: key {key!r} has shape {tuple(state[key].shape)}, which does not "
                                      f"fit Keras layer {keras_name!r} {tuple(variable.shape)} of FastSal-{variant}")
        assignments.append((layer, arrays))
    unexpected = sorted(set(state) - used)
    if unexpected:
        raise CheckpointError(f"{source}: unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected) for a "
                              f"FastSal-{variant} checkpoint")
    for layer, arrays in assignments:
        layer.set_weights(arrays)


def import_torch_checkpoint(path, variant=None, input_shape=(192, 256, 3), heads=("logits", "map", "prob"),
                            normalization="imagenet"):
    """Builds the Keras model for an authors' checkpoint (.pth, legacy or zip) and loads its weights.

    variant: 'A', 'C' or 'pretrain' (the hint model); detected from the keys when None, and checked
    against them when given. normalization="none" builds the model without in-model preprocessing
    (for inputs that are already ImageNet-normalised). Returns the Keras model.
    """
    state = load_torch_checkpoint(path)
    source = os.fspath(path)
    try:
        detected = detect_variant(state)
    except CheckpointError as error:
        raise CheckpointError(f"{source}: {error}") from None
    if variant is not None and str(variant).upper().replace("PRETRAIN", "pretrain") != detected:
        raise CheckpointError(f"{source}: asked for variant {variant!r} but the checkpoint holds a "
                              f"FastSal-{detected} state dict")
    settings = {**TORCH_COMPATIBLE, "normalization": normalization}
    if detected == "pretrain":
        model = build_hint_model(input_shape, **settings)
    else:
        model = build_fastsal(detected, input_shape, heads=heads, **settings)
    assign_state_dict(model, state, detected, source)
    return model
