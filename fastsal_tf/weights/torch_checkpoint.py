"""Reads PyTorch checkpoints (legacy and zip serialisations) into numpy arrays, without torch.

The file is treated as untrusted input: its pickles go through a restricted unpickler that resolves
only tensor rebuild functions, storage types / dtypes and `collections.OrderedDict`; everything else
(and every malformed, truncated or inconsistent file) raises `CheckpointError` naming the file.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pathlib
import pickle
import pickletools
import re
import struct
import zipfile
from collections.abc import Mapping

import numpy as np

__all__ = ["CheckpointError", "detect_variant", "load_torch_checkpoint"]

_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL = 1001
_ZIP_MAGIC = b"PK\x03\x04"
_STATE_DICT_WRAPPERS = ("student_model", "state_dict", "model")
# An expanded (stride-0) view may hold more elements than its storage, up to this many.
_MAX_EXPANDED_NUMEL = 1 << 24

_BFLOAT16 = "bfloat16"
_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "HalfStorage": "<f2", "DoubleStorage": "<f8", "BFloat16Storage": _BFLOAT16,
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}
_TORCH_DTYPES = {
    "float32": "<f4", "float": "<f4", "float16": "<f2", "half": "<f2", "float64": "<f8", "double": "<f8",
    "bfloat16": _BFLOAT16, "int64": "<i8", "long": "<i8", "int32": "<i4", "int": "<i4", "int16": "<i2",
    "short": "<i2", "int8": "i1", "uint8": "u1", "bool": "?",
}
_OLD_ADAPTATION_KEY = re.compile(r"^adaptation_layer\.layers\.(\d+)\.conv(\d+)\.(.+)$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read safely: refused global, corrupt, truncated or inconsistent."""


class _StorageType:
    """The element type of a storage, as named by the pickle (`torch.FloatStorage`, `torch.float32`)."""

    def __init__(self, name: str, dtype: str):
        self.name = name
        self.dtype = dtype

    @property
    def itemsize(self) -> int:
        return 2 if self.dtype == _BFLOAT16 else np.dtype(self.dtype).itemsize

    def to_array(self, raw) -> np.ndarray:
        """Little-endian raw bytes → 1-D array (bfloat16 widened to float32)."""
        if self.dtype == _BFLOAT16:
            return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        if self.dtype == "?":
            return np.frombuffer(raw, np.uint8) != 0
        return np.frombuffer(raw, self.dtype)


class _StorageRef:
    """A persistent id: `numel` elements at element `offset` of the file's storage `key`."""

    def __init__(self, key: str, storage_type: _StorageType, offset: int, numel: int):
        self.key = key
        self.storage_type = storage_type
        self.offset = offset
        self.numel = numel


class _LazyTensor:
    """A tensor whose storage bytes are read after unpickling (legacy files store them after the pickle)."""

    def __init__(self, storage: _StorageRef, offset: int, size: tuple[int, ...], stride: tuple[int, ...]):
        self.storage = storage
        self.offset = offset
        self.size = size
        self.stride = stride

    def materialise(self, data: np.ndarray) -> np.ndarray:
        """Contiguous native-endian copy of the tensor, given its whole storage array `data`."""
        ref = self.storage
        if ref.offset + ref.numel > data.size:
            raise ValueError(f"storage view [{ref.offset}, {ref.offset + ref.numel}) exceeds its "
                             f"storage of {data.size} elements")
        storage = data[ref.offset:ref.offset + ref.numel]
        dtype = storage.dtype.newbyteorder("=")
        numel = math.prod(self.size)
        if numel == 0:
            return np.empty(self.size, dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= ref.numel:
            raise ValueError(f"size {self.size}, stride {self.stride}, offset {self.offset} reach "
                             f"element {last} of a storage of {ref.numel} elements")
        if numel > max(ref.numel, _MAX_EXPANDED_NUMEL):
            raise ValueError(f"size {self.size} holds {numel} elements, far more than its storage of {ref.numel}")
        # Strides of unit dimensions never move; zeroing them keeps as_strided's byte strides small.
        strides = tuple(s * storage.itemsize if n > 1 else 0 for n, s in zip(self.size, self.stride))
        view = np.lib.stride_tricks.as_strided(storage[self.offset:], self.size, strides, writeable=False)
        return np.array(view, dtype=dtype, order="C")


def _is_index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """Stand-in for `torch._utils._rebuild_tensor_v2`: validates the arguments, defers the data."""
    if not isinstance(storage, _StorageRef):
        raise TypeError(f"tensor storage is a {type(storage).__name__}, not a storage")
    if not (_is_index(storage_offset) and isinstance(size, tuple) and isinstance(stride, tuple)
            and len(size) == len(stride) and all(map(_is_index, size + stride))):
        raise TypeError(f"bad tensor geometry: offset {storage_offset!r}, size {size!r}, stride {stride!r}")
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """Stand-in for `torch._utils._rebuild_parameter`: a parameter is its tensor."""
    if not isinstance(data, _LazyTensor):
        raise TypeError(f"parameter data is a {type(data).__name__}, not a tensor")
    return data


_ALLOWED_FUNCTIONS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the allow-listed globals; persistent ids become `_StorageRef`s when allowed."""

    def __init__(self, file, path: str, storages: dict[str, _StorageRef] | None = None):
        super().__init__(file, encoding="utf-8")
        self._path = path
        self._storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_FUNCTIONS:
            return _ALLOWED_FUNCTIONS[module, name]
        if module in ("torch", "torch.cuda") and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(name, _TORCH_DTYPES[name])
        raise CheckpointError(f"{self._path}: the checkpoint reader refuses to load global "
                              f"'{module}.{name}' (only tensors, storages and plain containers are allowed)")

    def persistent_load(self, pid):
        if self._storages is None:
            raise pickle.UnpicklingError("unexpected persistent id outside the checkpoint object")
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        storage_type, key, location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not (isinstance(storage_type, _StorageType) and isinstance(key, str)
                and isinstance(location, str) and _is_index(numel)):
            raise pickle.UnpicklingError(f"malformed storage id {pid!r:.80}")
        root = self._storages.setdefault(key, _StorageRef(key, storage_type, 0, numel))
        if root.storage_type.dtype != storage_type.dtype or root.numel != numel:
            raise pickle.UnpicklingError(f"storage '{key}' is referenced with conflicting types or sizes")
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)
                and _is_index(view[1]) and _is_index(view[2])):
            raise pickle.UnpicklingError(f"malformed storage view {view!r:.80}")
        return _StorageRef(key, storage_type, view[1], view[2])


def _check_memo(file: io.BytesIO) -> None:
    """Rejects memo indices beyond the opcodes seen so far (the C unpickler would allocate up to them)."""
    start = file.tell()
    for count, (opcode, arg, _) in enumerate(pickletools.genops(file)):
        if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and int(arg) > count:
            raise pickle.UnpicklingError(f"memo index {arg} at opcode {count}")
    file.seek(start)


def _unpickle(file: io.BytesIO, path: str, storages: dict[str, _StorageRef] | None = None):
    _check_memo(file)
    return _RestrictedUnpickler(file, path, storages).load()


def _read_legacy(data: bytes, path: str):
    """Legacy serialisation → (object, {storage key: array})."""
    file = io.BytesIO(data)
    if _unpickle(file, path) != _MAGIC:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (no zip archive, no legacy magic number)")
    protocol = _unpickle(file, path)
    if protocol != _PROTOCOL:
        raise CheckpointError(f"{path}: unsupported legacy protocol version {protocol!r:.40}")
    sys_info = _unpickle(file, path)
    if not isinstance(sys_info, dict) or "little_endian" not in sys_info:
        raise CheckpointError(f"{path}: malformed legacy header {sys_info!r:.120}")
    if sys_info["little_endian"] is not True:
        raise CheckpointError(f"{path}: written on a big-endian machine (little_endian="
                              f"{sys_info['little_endian']!r:.20}); only little-endian checkpoints are supported")
    storages: dict[str, _StorageRef] = {}
    obj = _unpickle(file, path, storages)
    keys = _unpickle(file, path)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise CheckpointError(f"{path}: malformed storage key list")
    arrays = {}
    for key in keys:
        ref = storages.get(key)
        if ref is None or key in arrays:
            raise CheckpointError(f"{path}: storage '{key}' is listed but not referenced, or listed twice")
        header = file.read(8)
        count = struct.unpack("<q", header)[0] if len(header) == 8 else -1
        if count != ref.numel:
            raise CheckpointError(f"{path}: storage '{key}' holds {count} elements, its tensors "
                                  f"expect {ref.numel} (truncated or corrupt file)")
        nbytes = count * ref.storage_type.itemsize
        start = file.tell()
        if start + nbytes > len(data):
            raise CheckpointError(f"{path}: storage '{key}' is truncated")
        arrays[key] = ref.storage_type.to_array(memoryview(data)[start:start + nbytes])
        file.seek(start + nbytes)
    missing = sorted(set(storages) - set(arrays))
    if missing:
        raise CheckpointError(f"{path}: missing storage(s) {missing[:5]}")
    return obj, arrays


def _read_zip(data: bytes, path: str):
    """Zip serialisation (torch >= 1.6) → (object, {storage key: array})."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: corrupt or truncated zip archive ({exc})") from None
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        pickles = [n for n in members if re.fullmatch(r"[^/]+/data\.pkl", n)]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: expected one '<archive>/data.pkl', found {pickles[:5]}")
        prefix = pickles[0][:-len("data.pkl")]

        def read(name: str) -> bytes:
            # torch stores members uncompressed; refusing compression rules out zip bombs.
            if members[name].compress_type != zipfile.ZIP_STORED:
                raise CheckpointError(f"{path}: member '{name}' is compressed; torch writes them stored")
            return archive.read(name)

        if prefix + "byteorder" in members:
            byteorder = read(prefix + "byteorder").decode("ascii", "replace").strip()
            if byteorder != "little":
                raise CheckpointError(f"{path}: byteorder is '{byteorder:.20}'; only little-endian "
                                      "checkpoints are supported")
        storages: dict[str, _StorageRef] = {}
        obj = _unpickle(io.BytesIO(read(pickles[0])), path, storages)
        arrays = {}
        for key, ref in storages.items():
            name = f"{prefix}data/{key}"
            if name not in members:
                raise CheckpointError(f"{path}: missing storage '{name}'")
            nbytes = ref.numel * ref.storage_type.itemsize
            if members[name].file_size != nbytes:
                raise CheckpointError(f"{path}: storage '{name}' has {members[name].file_size} bytes, "
                                      f"its tensors expect {nbytes}")
            arrays[key] = ref.storage_type.to_array(read(name))
    return obj, arrays


def _read(path: str):
    data = pathlib.Path(path).read_bytes()
    reader = _read_zip if data.startswith(_ZIP_MAGIC) else _read_legacy
    try:
        return reader(data, path)
    except CheckpointError:
        raise
    except Exception as exc:  # untrusted bytes: any parser failure means a corrupt file
        raise CheckpointError(f"{path}: corrupt, truncated or not a PyTorch checkpoint "
                              f"({type(exc).__name__}: {exc})") from exc


def _normalise_key(key: str) -> str:
    key = key.removeprefix("module.")
    return _OLD_ADAPTATION_KEY.sub(r"adaptation_layer.layers.\1.\2.\3", key)


def load_torch_checkpoint(path) -> dict[str, np.ndarray]:
    """State dict of a PyTorch checkpoint as {key: numpy array}, read without torch.

    Accepts the legacy and the zip serialisation. The state dict is the file's object itself or its
    'student_model' / 'state_dict' / 'model' entry (other entries such as 'optimizer' are ignored).
    Keys lose a leading 'module.' and the old spelling `adaptation_layer.layers.<i>.conv<j>.<p>` becomes
    `adaptation_layer.layers.<i>.<j>.<p>`. Raises CheckpointError for anything unsafe or inconsistent.
    """
    path = os.fspath(path)
    obj, arrays = _read(path)
    state = obj
    if isinstance(obj, dict):
        state = next((obj[k] for k in _STATE_DICT_WRAPPERS if isinstance(obj.get(k), dict)), obj)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict")
    result = {}
    for key, tensor in state.items():
        if not isinstance(key, str) or not isinstance(tensor, _LazyTensor):
            raise CheckpointError(f"{path}: state dict entry {key!r:.80} is a {type(tensor).__name__}, "
                                  "not a tensor")
        name = _normalise_key(key)
        if name in result:
            raise CheckpointError(f"{path}: key '{key}' duplicates '{name}' after normalisation")
        try:
            result[name] = tensor.materialise(arrays[tensor.storage.key])
        except ValueError as exc:
            raise CheckpointError(f"{path}: tensor '{key}': {exc}") from None
    return result


def detect_variant(state: dict) -> str:
    """'A', 'C' or 'pretrain' from the keys and shapes of a normalised FastSal state dict."""
    has_adp = any(k.startswith("adp1.inv_block.") for k in state)
    comb = sorted(k for k in state if k.startswith("comb."))
    adaptation = tuple(state[k].shape[0] for k in (f"adaptation_layer.layers.{i}.0.weight" for i in range(4))
                       if k in state)
    if has_adp and "comb.layers.0.0.weight" in state:
        return "A"
    if not has_adp and "comb.layers.0.1.weight" in state:
        return "C"
    if not has_adp and not comb and adaptation == (128, 256, 512, 512):
        return "pretrain"
    raise CheckpointError(f"not a FastSal A / C / pretrain state dict: adp1.inv_block keys "
                          f"{'present' if has_adp else 'absent'}, comb keys {comb[:6]}, adaptation output "
                          f"channels {adaptation}, {len(state)} entries")
