"""fastsal_tf.weights.torch_checkpoint: reading torch checkpoints without torch, as untrusted input."""

import collections
import io
import pickle
import pickletools
import re
import zipfile

import numpy as np
import pytest

import torch_writer as tw
from fastsal_tf.weights.torch_checkpoint import CheckpointError, detect_variant, load_torch_checkpoint

FORMATS = {"legacy": tw.write_legacy, "zip": tw.write_zip}


@pytest.fixture(params=sorted(FORMATS))
def write(request):
    return FORMATS[request.param]


def _assert_state_equal(state, expected):
    assert list(state) == list(expected)
    for key, want in expected.items():
        got = state[key]
        assert isinstance(got, np.ndarray) and got.flags.c_contiguous, key
        assert got.dtype == want.dtype and got.shape == want.shape, key
        np.testing.assert_array_equal(got, want, err_msg=key)


def _error(path, *fragments):
    """Loads path expecting CheckpointError whose message names the file and every fragment."""
    with pytest.raises(CheckpointError) as info:
        load_torch_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


# --- own fixtures -------------------------------------------------------------------------------


def test_committed_fixtures_are_what_the_writer_writes(test_data, tmp_path):
    tw.write_fixtures(tmp_path)
    for name in ("mixed_legacy.pth", "mixed_zip.pth"):
        assert (tmp_path / name).read_bytes() == (test_data / "torch" / name).read_bytes(), name


@pytest.mark.parametrize("name", ["mixed_legacy.pth", "mixed_zip.pth"])
def test_mixed_fixture_dtypes_views_and_offsets(test_data, name):
    _, expected = tw.mixed_checkpoint()
    state = load_torch_checkpoint(test_data / "torch" / name)
    _assert_state_equal(state, expected)
    assert state["bf16"].dtype == np.float32
    assert state["bn.num_batches_tracked"].ndim == 0


def test_shared_storage_views_are_independent_copies(test_data):
    state = load_torch_checkpoint(test_data / "torch" / "mixed_legacy.pth")
    state["shared.full"][0, 0] = 100
    assert state["shared.transposed"][0, 0] != 100
    assert not np.shares_memory(state["shared.full"], state["shared.slice"])


@pytest.mark.parametrize("wrapper", ["student_model", "state_dict", "model", None])
def test_wrappers_and_key_normalisation(tmp_path, write, wrapper):
    weight = np.arange(6, dtype=np.float32).reshape(3, 2, 1, 1)
    entries = {
        "module.ecer.0.0.weight": tw.tensor(weight),
        "module.adaptation_layer.layers.1.conv0.weight": tw.tensor(weight * 2),
        "adaptation_layer.layers.3.conv0.bias": tw.tensor(np.float32([1, 2, 3])),
        "comb.layers.0.0.weight": tw.tensor(weight[:1]),
    }
    sd = tw.state_dict(entries)
    obj = sd if wrapper is None else {wrapper: sd, "epoch": 3}
    write(tmp_path / "ckpt.pth", obj)
    _assert_state_equal(load_torch_checkpoint(tmp_path / "ckpt.pth"), {
        "ecer.0.0.weight": weight,
        "adaptation_layer.layers.1.0.weight": weight * 2,
        "adaptation_layer.layers.3.0.bias": np.float32([1, 2, 3]),
        "comb.layers.0.0.weight": weight[:1],
    })


def test_keys_colliding_after_normalisation(tmp_path, write):
    entries = {"a.weight": tw.tensor(np.float32([1])), "module.a.weight": tw.tensor(np.float32([2]))}
    write(tmp_path / "dup.pth", entries)
    _error(tmp_path / "dup.pth", "'module.a.weight'", "duplicates")


@pytest.mark.parametrize("obj", [{"a": 1}, {"student_model": {"w": "text"}}, [1, 2], {1: 2}])
def test_not_a_state_dict(tmp_path, write, obj):
    write(tmp_path / "odd.pth", obj)
    _error(tmp_path / "odd.pth")


def test_storage_types_named_by_torch_dtype_and_cuda_module(tmp_path, write):
    half = np.float16([1, -2, 0.5])
    entries = {
        "by_dtype": tw.Tensor(tw.Storage(half.tobytes(), "float16", module="torch"), 0, (3,), (1,)),
        "cuda": tw.Tensor(tw.Storage(np.float32([4, 5]).tobytes(), "FloatStorage", module="torch.cuda",
                                     location="cuda:0"), 1, (), ()),
    }
    write(tmp_path / "types.pth", entries)
    _assert_state_equal(load_torch_checkpoint(tmp_path / "types.pth"),
                        {"by_dtype": half, "cuda": np.array(5, np.float32)})


def test_legacy_storage_views(tmp_path):
    root = tw.Storage.of(np.arange(10, dtype=np.int64))
    entries = {
        "whole": tw.Tensor(root, 0, (10,), (1,)),
        "view": tw.Tensor(tw.StorageView(root, "v1", 4, 5), 1, (2, 2), (1, 2)),
    }
    tw.write_legacy(tmp_path / "views.pth", entries)
    state = load_torch_checkpoint(tmp_path / "views.pth")
    np.testing.assert_array_equal(state["view"], np.arange(10)[5:9].reshape(2, 2).T)


def test_storage_view_beyond_its_storage(tmp_path):
    root = tw.Storage.of(np.arange(10, dtype=np.int64))
    tw.write_legacy(tmp_path / "views.pth", {"view": tw.Tensor(tw.StorageView(root, "v1", 8, 5), 0, (5,), (1,))})
    _error(tmp_path / "views.pth", "'view'", "exceeds")


# --- malicious and corrupt input ----------------------------------------------------------------


class _Evil:
    """Pickles as a call of an arbitrary global (the classic __reduce__ attack)."""

    def __init__(self, module, name, *args):
        self.target, self.args = tw.Global(module, name), args

    def __reduce__(self):
        return self.target, self.args


def _payloads(marker):
    return {
        "os.system": _Evil("os", "system", f"touch {marker}"),
        "posix.system": _Evil("posix", "system", f"touch {marker}"),
        "builtins.eval": _Evil("builtins", "eval", f"open({str(marker)!r}, 'w').close()"),
        "builtins.exec": _Evil("builtins", "exec", f"open({str(marker)!r}, 'w').close()"),
        "subprocess.Popen": _Evil("subprocess", "Popen", ["touch", str(marker)]),
        "torch.load": _Evil("torch", "load", str(marker)),
    }


@pytest.mark.parametrize("target", sorted(_payloads("x")))
@pytest.mark.parametrize("where", ["first", "nested"])
def test_malicious_globals_are_refused_and_not_run(tmp_path, write, target, where):
    marker = tmp_path / "pwned"
    evil = _payloads(marker)[target]
    if where == "first":
        obj = {"student_model": tw.state_dict({"x": evil, "w": tw.tensor(np.float32([1]))})}
    else:
        obj = {"student_model": tw.state_dict({"w": tw.tensor(np.float32([1]))}), "optimizer": {"state": [evil]}}
    write(tmp_path / "evil.pth", obj)
    _error(tmp_path / "evil.pth", f"refuses to load global '{target}'")
    assert not marker.exists()


def test_the_malicious_fixture_is_live_for_a_naive_unpickler(tmp_path):
    """Control: plain pickle runs the payload, so the test above really exercises the refusal."""
    marker = tmp_path / "pwned"
    tw.write_legacy(tmp_path / "evil.pth", {"student_model": {"x": _payloads(marker)["os.system"]}})
    with open(tmp_path / "evil.pth", "rb") as file:
        for _ in range(3):
            pickle.load(file)
        unpickler = pickle.Unpickler(file)
        unpickler.persistent_load = lambda pid: None
        unpickler.load()
    assert marker.exists()


@pytest.mark.parametrize("position", ["sys_info", "storage_keys"])
def test_globals_refused_outside_the_object_pickle(tmp_path, position):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    tw.write_legacy(path, {"w": tw.tensor(np.float32([1]))})
    data = path.read_bytes()
    evil = io.BytesIO()
    tw._dump(_payloads(marker)["os.system"], evil)
    file = io.BytesIO(data)
    ends = [0]
    for _ in range(5):  # magic, protocol, sys_info, object, storage keys
        for _ in pickletools.genops(file):
            pass
        ends.append(file.tell())
    index = 2 if position == "sys_info" else 4
    path.write_bytes(data[:ends[index]] + evil.getvalue() + data[ends[index + 1]:])
    _error(path, "refuses to load global 'os.system'")
    assert not marker.exists()


def test_truncated_fixtures(test_data, tmp_path):
    for name in ("mixed_legacy.pth", "mixed_zip.pth"):
        data = (test_data / "torch" / name).read_bytes()
        for cut in sorted({len(data) // 2, *range(0, len(data), 23), len(data) - 1}):
            path = tmp_path / f"cut_{cut}_{name}"
            path.write_bytes(data[:cut])
            _error(path)


@pytest.mark.parametrize("name", ["mixed_legacy.pth", "mixed_zip.pth"])
def test_corrupted_bytes_never_escape_as_other_errors(test_data, tmp_path, name):
    data = bytearray((test_data / "torch" / name).read_bytes())
    rng = np.random.default_rng(0)
    path = tmp_path / name
    for _ in range(300):
        corrupt = data.copy()
        for pos in rng.integers(0, len(data), size=rng.integers(1, 4)):
            corrupt[pos] = int(rng.integers(0, 256))
        path.write_bytes(bytes(corrupt))
        try:
            state = load_torch_checkpoint(path)
        except CheckpointError as exc:
            assert str(path) in str(exc)
        else:
            assert all(isinstance(v, np.ndarray) for v in state.values())


@pytest.mark.parametrize("content", [
    b"",
    b"just some text\nnot a checkpoint\n",
    np.random.default_rng(1).bytes(4096),
    pickle.dumps({"a": 1}, protocol=2),
    pickle.dumps(tw.MAGIC, protocol=2),
    pickle.dumps(np.zeros(3), protocol=2),
    b"PK\x03\x04" + bytes(100),
], ids=["empty", "text", "random", "plain_pickle", "magic_only", "numpy_pickle", "zip_header_only"])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "not_a_checkpoint.pth"
    path.write_bytes(content)
    _error(path)


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("something/else.txt", "hello")
    _error(path, "data.pkl")


def test_missing_storage(tmp_path, write):
    entries = {"a": tw.tensor(np.float32([1, 2])), "b": tw.tensor(np.float32([3]))}
    skipped = "1" if write is tw.write_zip else "139999999995904"
    write(tmp_path / "missing.pth", entries, skip_storages=(skipped,))
    _error(tmp_path / "missing.pth", "missing storage", skipped)


def test_tensor_larger_than_its_storage(tmp_path, write):
    storage = tw.Storage.of(np.arange(6, dtype=np.float32))
    write(tmp_path / "big.pth", {"ok": tw.Tensor(storage, 0, (6,), (1,)),
                                 "layer.weight": tw.Tensor(storage, 2, (2, 3), (3, 1))})
    _error(tmp_path / "big.pth", "'layer.weight'", "element 7 of a storage of 6")


def test_storage_size_disagrees_with_its_id(tmp_path, write):
    storage = tw.Storage(np.float32([1, 2, 3]).tobytes(), "FloatStorage", numel=4)
    write(tmp_path / "size.pth", {"w": tw.Tensor(storage, 0, (3,), (1,))})
    message = _error(tmp_path / "size.pth")
    assert re.search(r"holds 3 elements|has 12 bytes", message)


def test_absurd_expanded_tensor_is_refused(tmp_path, write):
    storage = tw.Storage.of(np.float32([1]))
    write(tmp_path / "huge.pth", {"w": tw.Tensor(storage, 0, (1 << 20, 1 << 20), (0, 0))})
    _error(tmp_path / "huge.pth", "'w'", "elements")


def test_huge_stride_on_a_unit_dimension(tmp_path, write):
    write(tmp_path / "stride.pth", {"w": tw.Tensor(tw.Storage.of(np.float32([1, 2])), 1, (1, 1), (1 << 70, 5))})
    np.testing.assert_array_equal(load_torch_checkpoint(tmp_path / "stride.pth")["w"], [[2]])


def test_big_endian_is_refused(tmp_path):
    entries = {"w": tw.tensor(np.float32([1]))}
    tw.write_legacy(tmp_path / "be_legacy.pth", entries, little_endian=False)
    _error(tmp_path / "be_legacy.pth", "big-endian")
    tw.write_zip(tmp_path / "be_zip.pth", entries, byteorder="big")
    _error(tmp_path / "be_zip.pth", "byteorder is 'big'")


def test_compressed_zip_members_are_refused(tmp_path):
    tw.write_zip(tmp_path / "deflated.pth", {"w": tw.tensor(np.zeros(1000, np.float32))},
                 compression=zipfile.ZIP_DEFLATED)
    _error(tmp_path / "deflated.pth", "compressed")


def test_memo_index_bomb_is_refused_before_allocation(tmp_path):
    # EMPTY_DICT, LONG_BINPUT 0xFFFFFFF0: the C unpickler would size its memo to twice that index.
    path = tmp_path / "memo.pth"
    path.write_bytes(b"\x80\x02}r\xf0\xff\xff\xff.")
    _error(path, "memo index")


# --- real torch output (../shared) --------------------------------------------------------------


def _key_list(path):
    entries = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape, dtype = line.split()
            entries[key] = (tuple(int(n) for n in shape.strip("()").split(",") if n), np.dtype(dtype))
    return entries


@pytest.fixture(scope="module")
def reference(shared_dir):
    return shared_dir / "reference"


@pytest.mark.parametrize("variant, count", [("A", 394), ("C", 322)])
def test_real_checkpoints_match_key_lists(reference, variant, count):
    expected = _key_list(reference / f"state_dict_{variant}.txt")
    state = load_torch_checkpoint(reference / f"random_{variant}.pth")
    assert len(state) == len(expected) == count
    assert list(state) == list(expected)
    for key, (shape, dtype) in expected.items():
        assert state[key].shape == shape and state[key].dtype == dtype, key
    assert detect_variant(state) == variant


@pytest.mark.parametrize("name, twin", [("random_A_convkeys.pth", "random_A.pth"),
                                        ("random_C_zip.pth", "random_C.pth")])
def test_real_checkpoint_twins_are_identical(reference, name, twin):
    _assert_state_equal(load_torch_checkpoint(reference / name), load_torch_checkpoint(reference / twin))


@pytest.mark.parametrize("name", ["random_A.pth", "random_C_zip.pth"])
def test_real_checkpoints_truncated(reference, tmp_path, name):
    data = (reference / name).read_bytes()
    for cut in (len(data) // 2, 100):
        path = tmp_path / name
        path.write_bytes(data[:cut])
        _error(path)


def test_detect_variant_pretrain_from_key_list(reference):
    state = {k: np.zeros(shape, dtype) for k, (shape, dtype) in
             _key_list(reference / "state_dict_pretrain.txt").items()}
    assert detect_variant(state) == "pretrain"


# --- detect_variant on fixtures ------------------------------------------------------------------


def _variant_state(adaptation, comb=None, adp=False):
    state = {f"adaptation_layer.layers.{i}.0.weight": np.zeros((c, 1, 1, 1), np.float32)
             for i, c in enumerate(adaptation)}
    if adp:
        state["adp1.inv_block.conv.0.0.weight"] = np.zeros((16, 8, 1, 1), np.float32)
    if comb:
        state[comb] = np.zeros((1, 2, 3, 3), np.float32)
    return state


def test_detect_variant_fixtures(tmp_path):
    assert detect_variant(_variant_state((8, 32, 128, 512), "comb.layers.0.0.weight", adp=True)) == "A"
    assert detect_variant(_variant_state((128, 256, 512, 512), "comb.layers.0.1.weight")) == "C"
    assert detect_variant(_variant_state((128, 256, 512, 512))) == "pretrain"
    entries = collections.OrderedDict(
        (k, tw.Tensor(tw.Storage.of(np.float32([0])), 0, v.shape, (0,) * v.ndim))
        for k, v in _variant_state((128, 256, 512, 512)).items())
    tw.write_zip(tmp_path / "pretrain.pth", entries)
    assert detect_variant(load_torch_checkpoint(tmp_path / "pretrain.pth")) == "pretrain"


@pytest.mark.parametrize("state", [
    {},
    _variant_state((8, 32, 128, 512)),
    _variant_state((128, 256, 512, 512), "comb.layers.0.0.weight"),
    _variant_state((8, 32, 128, 512), "comb.layers.0.1.weight", adp=True),
], ids=["empty", "A_without_comb", "comb_A_without_adp", "C_head_with_adp"])
def test_detect_variant_unknown(state):
    with pytest.raises(CheckpointError, match="not a FastSal"):
        detect_variant(state)
