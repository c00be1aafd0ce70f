"""Importer of authors' checkpoints on our own fixtures (no ../shared): random state dicts with the
authors' keys and shapes (tests/data/torch/state_dict_*.txt), written in torch's formats by
tests/torch_writer.py, checked against a numpy forward of the first layers written from PyTorch's
definitions (symmetric padding, OIHW kernels, BatchNorm with eps 1e-5)."""

import collections

import keras
import numpy as np
import pytest

from fastsal_tf.weights.torch_checkpoint import CheckpointError
from fastsal_tf.weights.torch_import import import_torch_checkpoint
import torch_writer


def key_list(test_data, variant):
    entries = []
    for line in (test_data / "torch" / f"state_dict_{variant}.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape, dtype = line.split()
        dims = tuple(int(v) for v in shape.strip("()").split(",") if v)
        entries.append((key, dims, dtype))
    return entries


def random_state(test_data, variant, seed=0):
    rng = np.random.default_rng(seed)
    state = collections.OrderedDict()
    for key, shape, dtype in key_list(test_data, variant):
        if dtype == "int64":
            state[key] = np.array(10, np.int64)
        elif key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            state[key] = rng.normal(0, 0.2, shape).astype(np.float32)
    return state


def write(path, state, fmt="legacy", wrap=True):
    obj = torch_writer.state_dict({k: torch_writer.tensor(v) for k, v in state.items()})
    obj = {"student_model": obj} if wrap else obj
    (torch_writer.write_legacy if fmt == "legacy" else torch_writer.write_zip)(path, obj)
    return path


def torch_conv2d(x, weight, stride=1, padding=1, groups=1):
    """PyTorch Conv2d from its definition: x (C, H, W), weight (O, C/groups, kh, kw), zero padding."""
    c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    out = np.zeros((o, ho, wo))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(kh):
            for j in range(kw):
                patch = xp[g * cg:(g + 1) * cg, i:i + stride * ho:stride, j:j + stride * wo:stride]
                out[oc] += np.tensordot(weight[oc, :, i, j], patch, axes=1)
    return out


def torch_bn(x, state, prefix):
    scale = state[f"{prefix}.weight"] / np.sqrt(state[f"{prefix}.running_var"] + 1e-5)
    return (x - state[f"{prefix}.running_mean"][:, None, None]) * scale[:, None, None] + state[f"{prefix}.bias"][:, None, None]


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_first_layers_match_pytorch_definition(test_data, tmp_path, fmt):
    state = random_state(test_data, "C")
    model = import_torch_checkpoint(write(tmp_path / "c.pth", state, fmt), input_shape=(32, 64, 3),
                                    normalization="none")
    probe = keras.Model(model.input, [model.get_layer("Conv1_relu").output,
                                      model.get_layer("expanded_conv_project_BN").output])
    x = np.random.default_rng(1).normal(size=(1, 32, 64, 3)).astype(np.float32)
    stem, block1 = probe.predict(x, verbose=0)
    ref = np.clip(torch_bn(torch_conv2d(x[0].transpose(2, 0, 1), state["ecer.0.0.weight"], stride=2), state,
                           "ecer.0.1"), 0, 6)
    np.testing.assert_allclose(stem[0].transpose(2, 0, 1), ref, atol=1e-4)
    dw = np.clip(torch_bn(torch_conv2d(ref, state["ecer.1.conv.0.0.weight"], groups=32), state, "ecer.1.conv.0.1"), 0, 6)
    proj = torch_bn(torch_conv2d(dw, state["ecer.1.conv.1.weight"], padding=0), state, "ecer.1.conv.2")
    np.testing.assert_allclose(block1[0].transpose(2, 0, 1), proj, atol=1e-4)


@pytest.mark.parametrize("variant,expected", [("A", "fastsal_A"), ("C", "fastsal_C"), ("pretrain", "fastsal_hint")])
def test_every_weight_is_loaded(test_data, tmp_path, variant, expected):
    state = random_state(test_data, variant, seed=2)
    model = import_torch_checkpoint(write(tmp_path / "m.pth", state, wrap=variant != "C"), input_shape=(32, 32, 3))
    assert model.name == expected
    final = "comb.layers.0.0.weight" if variant == "A" else "comb.layers.0.1.weight"
    if variant != "pretrain":
        np.testing.assert_array_equal(model.get_layer("logits").kernel.numpy(), state[final].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(model.get_layer("adapt_3").bias.numpy(), state["adaptation_layer.layers.3.0.bias"])
    np.testing.assert_array_equal(model.get_layer("block_16_depthwise").kernel.numpy(),
                                  state["ecer.17.conv.1.0.weight"].transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(model.get_layer("Conv_1_bn").moving_variance.numpy(), state["ecer.18.1.running_var"])
    loaded = sum(int(np.prod(v.shape)) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert loaded == sum(int(np.prod(w.shape)) for w in model.weights)


def test_bad_checkpoints_name_file_and_key(test_data, tmp_path):
    state = random_state(test_data, "A")
    missing = dict(state)
    del missing["adp2.inv_block.conv.3.bias"]
    with pytest.raises(CheckpointError, match=r"missing\.pth.*adp2\.inv_block\.conv\.3\.bias"):
        import_torch_checkpoint(write(tmp_path / "missing.pth", missing), input_shape=(32, 32, 3))
    extra = {**state, "adp5.weight": np.zeros(3, np.float32)}
    with pytest.raises(CheckpointError, match=r"extra\.pth.*unexpected key 'adp5\.weight'"):
        import_torch_checkpoint(write(tmp_path / "extra.pth", extra), input_shape=(32, 32, 3))
    shaped = {**state, "ecer.3.conv.1.0.weight": np.zeros((144, 1, 5, 5), np.float32)}
    with pytest.raises(CheckpointError, match=r"shaped\.pth.*ecer\.3\.conv\.1\.0\.weight"):
        import_torch_checkpoint(write(tmp_path / "shaped.pth", shaped), input_shape=(32, 32, 3))
    with pytest.raises(CheckpointError, match=r"a\.pth.*FastSal-A"):
        import_torch_checkpoint(write(tmp_path / "a.pth", state), variant="C", input_shape=(32, 32, 3))
    data = (tmp_path / "a.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth"):
        import_torch_checkpoint(tmp_path / "cut.pth", input_shape=(32, 32, 3))
