"""Test helper: writes PyTorch checkpoints the way `torch.save` does, without torch and without fastsal_tf.

Tensors pickle as `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`
calls whose storages are persistent ids; globals are written as GLOBAL opcodes by name, so they need not
be importable here. `write_legacy` follows torch's `_legacy_save` (torch < 1.6 or
`_use_new_zipfile_serialization=False`), `write_zip` follows `_save`.
"""

from __future__ import annotations

import collections
import io
import pathlib
import pickle
import struct
import zipfile

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001


class Global:
    """A global named by (module, name), pickled as a GLOBAL opcode (e.g. `torch FloatStorage`)."""

    _cache: dict[tuple[str, str], Global] = {}

    def __new__(cls, module: str, name: str):
        key = (module, name)
        if key not in cls._cache:
            obj = super().__new__(cls)
            obj.module, obj.name = key
            cls._cache[key] = obj
        return cls._cache[key]

    def __call__(self, *args):  # callable, as pickle's save_reduce requires; never called here
        raise TypeError(f"{self.module}.{self.name} is a stand-in")


REBUILD_TENSOR_V2 = Global("torch._utils", "_rebuild_tensor_v2")
REBUILD_PARAMETER = Global("torch._utils", "_rebuild_parameter")
ITEMSIZE = {"FloatStorage": 4, "HalfStorage": 2, "DoubleStorage": 8, "BFloat16Storage": 2, "LongStorage": 8,
            "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
            "float16": 2}
STORAGE_CLASS = {"float32": "FloatStorage", "float16": "HalfStorage", "float64": "DoubleStorage",
                 "int64": "LongStorage", "int32": "IntStorage", "int16": "ShortStorage", "int8": "CharStorage",
                 "uint8": "ByteStorage", "bool": "BoolStorage"}


class Storage:
    """Raw little-endian bytes of a storage; `numel` (what the pickle claims) defaults to their count."""

    def __init__(self, raw: bytes, storage_class: str, numel: int | None = None, module: str = "torch",
                 location: str = "cpu"):
        self.raw = raw
        self.type = Global(module, storage_class)
        self.numel = len(raw) // ITEMSIZE[storage_class] if numel is None else numel
        self.location = location

    @classmethod
    def of(cls, values) -> Storage:
        arr = np.asarray(values).ravel()
        return cls(arr.astype(arr.dtype.newbyteorder("<")).tobytes(), STORAGE_CLASS[arr.dtype.name])

    @classmethod
    def bfloat16(cls, values) -> Storage:
        bits = np.asarray(values, dtype=np.float32).view(np.uint32) >> 16
        return cls(bits.astype("<u2").tobytes(), "BFloat16Storage")


class StorageView:
    """A legacy view of `numel` elements at `offset` of a storage (pre-1.0 torch wrote these)."""

    def __init__(self, storage: Storage, key: str, offset: int, numel: int):
        self.storage, self.key, self.offset, self.numel = storage, key, offset, numel


class Tensor:
    """A tensor: storage + offset/size/stride in elements; pickles like `torch.Tensor.__reduce_ex__`."""

    def __init__(self, storage, offset: int, size, stride, parameter: bool = False):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)
        self.parameter = parameter

    def __reduce_ex__(self, protocol):
        if self.parameter:
            data = Tensor(self.storage, self.offset, self.size, self.stride)
            return REBUILD_PARAMETER, (data, True, collections.OrderedDict())
        return REBUILD_TENSOR_V2, (self.storage, self.offset, self.size, self.stride, False,
                                   collections.OrderedDict())


def tensor(values, parameter: bool = False) -> Tensor:
    """A contiguous tensor with its own storage."""
    arr = np.array(values, order="C")
    stride = tuple(s // arr.itemsize for s in arr.strides)
    return Tensor(Storage.of(arr), 0, arr.shape, stride, parameter)


def state_dict(entries: dict) -> collections.OrderedDict:
    """An OrderedDict with the `_metadata` attribute that `Module.state_dict()` attaches."""
    sd = collections.OrderedDict(entries)
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    return sd


class _Pickler(pickle._Pickler):
    """Protocol-2 pickler with persistent ids that writes `Global`s as GLOBAL opcodes."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file, persistent_id):
        super().__init__(file, protocol=2)
        self._persistent_id = persistent_id

    def persistent_id(self, obj):
        return self._persistent_id(obj)

    def _save_global_by_name(self, obj: Global):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("utf-8"))
        self.memoize(obj)

    dispatch[Global] = _save_global_by_name


def _dump(obj, file, persistent_id=lambda obj: None):
    _Pickler(file, persistent_id).dump(obj)


def write_legacy(path, obj, little_endian: bool = True, skip_storages=()) -> None:
    """Legacy serialisation: magic, protocol, sys info, object, sorted storage keys, storages' data."""
    storages: dict[str, Storage] = {}
    keys: dict[int, str] = {}

    def persistent_id(o):
        root = o.storage if isinstance(o, StorageView) else o
        if not isinstance(root, Storage):
            return None
        # torch keys storages by their C pointer, so sorting the keys scrambles the pickle order.
        key = keys.setdefault(id(root), str(140_000_000_000_000 - 4096 * len(keys)))
        storages[key] = root
        view = (o.key, o.offset, o.numel) if isinstance(o, StorageView) else None
        return "storage", root.type, key, root.location, root.numel, view

    file = io.BytesIO()
    sys_info = {"protocol_version": PROTOCOL, "little_endian": little_endian,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    for header in (MAGIC, PROTOCOL, sys_info):
        _dump(header, file)
    _dump(obj, file, persistent_id)
    listed = [k for k in sorted(storages) if k not in skip_storages]
    _dump(listed, file)
    for key in listed:
        raw = storages[key].raw
        file.write(struct.pack("<q", len(raw) // ITEMSIZE[storages[key].type.name]))
        file.write(raw)
    pathlib.Path(path).write_bytes(file.getvalue())


def write_zip(path, obj, byteorder: str = "little", skip_storages=(),
              compression: int = zipfile.ZIP_STORED) -> None:
    """Zip serialisation: `<stem>/data.pkl`, `<stem>/data/<key>` (keys '0', '1', …), byteorder, version."""
    storages: dict[int, tuple[str, Storage]] = {}

    def persistent_id(o):
        if not isinstance(o, Storage):
            return None
        key, _ = storages.setdefault(id(o), (str(len(storages)), o))
        return "storage", o.type, key, o.location, o.numel

    pkl = io.BytesIO()
    _dump(obj, pkl, persistent_id)
    prefix = pathlib.Path(path).stem
    members = [("data.pkl", pkl.getvalue()), (".format_version", b"1"), (".storage_alignment", b"64"),
               ("byteorder", byteorder.encode())]
    members += [(f"data/{key}", s.raw) for key, s in storages.values() if key not in skip_storages]
    members.append(("version", b"3\n"))
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(f"{prefix}/{name}"), data, compress_type=compression)


def mixed_checkpoint() -> tuple[dict, dict[str, np.ndarray]]:
    """The authors' {'student_model', 'optimizer'} layout over many dtypes and strided views.

    Returns (object to save, expected state dict) — the expected arrays are numpy views of the same
    values, computed independently of the hand-written offsets and strides.
    """
    rng = np.random.default_rng(7)
    weight = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    base = np.arange(12, dtype=np.float32) * 1.5 - 4
    shared = Storage.of(base)
    grid = base.reshape(3, 4)
    bf16 = np.array([1.0, -2.5, 3.140625], dtype=np.float32)
    values = {
        "conv.weight": (tensor(weight, parameter=True), weight),
        "conv.bias": (tensor(np.float32([0.5, -0.25])), np.float32([0.5, -0.25])),
        "bn.num_batches_tracked": (tensor(np.int64(7)), np.array(7, dtype=np.int64)),
        "half": (tensor(np.float16([[1.5, -2], [65504, 1e-3]])), np.float16([[1.5, -2], [65504, 1e-3]])),
        "double": (tensor(np.float64([np.pi, -1e300, 0])), np.float64([np.pi, -1e300, 0])),
        "int32": (tensor(np.int32([[-(2**31), -1, 0], [1, 2, 2**31 - 1]])),
                  np.int32([[-(2**31), -1, 0], [1, 2, 2**31 - 1]])),
        "int16": (tensor(np.int16([-32768, 32767])), np.int16([-32768, 32767])),
        "int8": (tensor(np.int8([-128, 127])), np.int8([-128, 127])),
        "uint8": (tensor(np.uint8([0, 1, 254, 255])), np.uint8([0, 1, 254, 255])),
        "bool": (tensor(np.array([True, False, True])), np.array([True, False, True])),
        "bf16": (Tensor(Storage.bfloat16(bf16), 0, (3,), (1,)), bf16),
        "shared.full": (Tensor(shared, 0, (3, 4), (4, 1)), grid),
        "shared.transposed": (Tensor(shared, 0, (4, 3), (1, 4)), grid.T),
        "shared.slice": (Tensor(shared, 5, (2, 3), (4, 1)), grid[1:, 1:]),
        "shared.step": (Tensor(shared, 1, (2, 2), (8, 2)), grid[::2, 1::2]),
        "shared.scalar": (Tensor(shared, 7, (), ()), np.array(base[7])),
        "expanded": (Tensor(Storage.of(np.float32([1, 2, 3])), 0, (2, 3), (0, 1)),
                     np.broadcast_to(np.float32([1, 2, 3]), (2, 3))),
        "empty": (Tensor(Storage.of(np.zeros(0, np.float32)), 0, (0, 3), (3, 1)), np.zeros((0, 3), np.float32)),
    }
    optimizer = {"state": {0: {"step": 3, "exp_avg": tensor(np.ones(4, np.float32))}},
                 "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "weight_decay": 0, "amsgrad": False,
                                   "foreach": None, "params": [0, 1]}]}
    obj = {"student_model": state_dict({k: t for k, (t, _) in values.items()}), "optimizer": optimizer}
    return obj, {k: v for k, (_, v) in values.items()}


def write_fixtures(directory) -> None:
    """(Re)writes the committed fixtures tests/data/torch/mixed_{legacy,zip}.pth."""
    directory = pathlib.Path(directory)
    obj, _ = mixed_checkpoint()
    write_legacy(directory / "mixed_legacy.pth", obj)
    write_zip(directory / "mixed_zip.pth", obj)
