"""Whole pickled modules in torch's legacy (pre-1.6) file format, read without running their code.

Some authors saved ``torch.save(model)`` rather than a state dict (PFSRNet's compressed FAN is
one): the file names the model's Python class and stores its attributes, and
``torch.load(weights_only=True)`` refuses it, while a plain ``torch.load`` would import the
authors' module and run whatever the pickle asks. :func:`read_pickled_module` takes the third way:
a restricted unpickler that resolves every class the file names to an inert record (it builds
nothing but dicts, lists, tuples, numbers, strings and the tensors' bytes), then walks the
records' ``_parameters`` / ``_buffers`` / ``_modules`` into a state dict and a map of module paths
to class names. Nothing in the file is imported or called.

The legacy format is a run of pickles: magic number, protocol version, system info, the object
(tensors point into storages by key), the list of storage keys, then each storage's raw bytes
(an int64 element count, then the elements, little-endian).
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from srkit.weights.errors import WeightsError

__all__ = ["PickledModule", "read_pickled_module"]

_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL = 1001
_STORAGES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


@dataclass
class PickledModule:
    """What :func:`read_pickled_module` found: ``classes`` maps each module path (``""`` for the
    root, ``"layers.0"``, ...) to the class the file names (``"torch.nn.modules.conv.Conv2d"``);
    ``state`` is the state dict (parameters and buffers); ``attributes`` the plain attributes of
    each module (``stride``, ``negative_slope``, ...); ``source`` the root class's source code as
    the file recorded it (legacy files keep it), for the reader to compare, never to run."""

    classes: dict[str, str]
    state: dict[str, torch.Tensor]
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str | None = None


class _Record:
    """Stand-in for any class a file names: keeps its constructor arguments and its state."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.__dict__.update(state)


@dataclass
class _StorageRef:
    key: str
    dtype: torch.dtype
    numel: int
    view: tuple[str, int, int] | None


@dataclass
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, offset, size, stride, *_rest) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("a tensor without a storage")
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *_rest):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, file) -> None:
        super().__init__(file)
        self.sources: dict[str, str] = {}
        self.records: dict[str, type[_Record]] = {}

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGES:
            return _STORAGES[name]
        # anything else (the model's classes, torch.nn modules, backend getters): inert
        qualname = f"{module}.{name}"
        if qualname not in self.records:
            self.records[qualname] = type(name, (_Record,), {"qualname": qualname})
        return self.records[qualname]

    def persistent_load(self, pid: Any):
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        kind = pid[0].decode() if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":  # (cls, file, source): legacy files keep each class's source
            cls = pid[1]
            if len(pid) > 3 and isinstance(pid[3], str) and hasattr(cls, "qualname"):
                self.sources[cls.qualname] = pid[3]
            return cls
        if kind == "storage":
            dtype, key, _location, numel, view = pid[1:6]
            if not isinstance(dtype, torch.dtype):
                raise pickle.UnpicklingError(f"unknown storage type {dtype!r}")
            return _StorageRef(str(key), dtype, int(numel), view and (str(view[0]), *view[1:]))
        raise pickle.UnpicklingError(f"unknown persistent id kind {kind!r}")


def _read_storages(f, keys: list[str], wanted: dict[str, _StorageRef]) -> dict[str, torch.Tensor]:
    out = {}
    for key in keys:
        ref = wanted.get(str(key))
        head = f.read(8)
        if len(head) != 8:
            raise WeightsError("the file ends inside its tensors")
        (numel,) = struct.unpack("<q", head)
        dtype = ref.dtype if ref is not None else torch.uint8
        size = numel * torch.empty((), dtype=dtype).element_size()
        data = f.read(size)
        if len(data) != size:
            raise WeightsError("the file ends inside its tensors")
        out[str(key)] = torch.frombuffer(bytearray(data), dtype=dtype) if size else torch.empty(
            0, dtype=dtype
        )  # fmt: skip
    return out


def _materialise(ref: _TensorRef, storages: dict[str, torch.Tensor]) -> torch.Tensor:
    flat = storages.get(ref.storage.key)
    if flat is None:
        raise WeightsError(f"a tensor's storage {ref.storage.key!r} is not in the file")
    if ref.storage.view is not None:
        _key, offset, numel = ref.storage.view
        flat = flat[offset : offset + numel]
    return torch.as_strided(flat, ref.size, ref.stride, ref.offset).clone()


def _walk(record: Any, prefix: str, found: PickledModule, refs: dict[str, _TensorRef]) -> None:
    if not isinstance(record, _Record):
        raise WeightsError(f"module {prefix or '(root)'!r} is not a pickled module")
    found.classes[prefix] = type(record).qualname
    d = record.__dict__
    plain = (int, float, bool, str, tuple, type(None))
    found.attributes[prefix] = {
        k: v for k, v in d.items() if not k.startswith("_") and isinstance(v, plain)
    }
    dot = f"{prefix}." if prefix else ""
    for group in ("_parameters", "_buffers"):
        for name, value in (d.get(group) or {}).items():
            if value is not None:
                if not isinstance(value, _TensorRef):
                    raise WeightsError(f"{dot}{name}: not a tensor")
                refs[f"{dot}{name}"] = value
    for name, child in (d.get("_modules") or {}).items():
        if child is not None:
            _walk(child, f"{dot}{name}", found, refs)


def read_pickled_module(path: str | Path) -> PickledModule:
    """The module tree and tensors of a legacy ``torch.save(model)`` file (see the module doc)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            try:
                magic = _Unpickler(f).load()
                if magic != _MAGIC:
                    raise WeightsError(f"{path}: not a legacy PyTorch file (bad magic number)")
                if _Unpickler(f).load() != _PROTOCOL:
                    raise WeightsError(f"{path}: unknown legacy PyTorch protocol version")
                _Unpickler(f).load()  # system info: a plain dict
                unpickler = _Unpickler(f)
                root = unpickler.load()
                keys = _Unpickler(f).load()
            except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as err:
                raise WeightsError(
                    f"{path}: not a legacy PyTorch module file ({err or type(err).__name__}); "
                    "zip-format files are read with torch.load(weights_only=True)"
                ) from None
            found = PickledModule({}, {}, {})
            refs: dict[str, _TensorRef] = {}
            _walk(root, "", found, refs)
            found.source = unpickler.sources.get(found.classes[""])
            wanted = {r.storage.key: r.storage for r in refs.values()}
            storages = _read_storages(f, list(keys), wanted)
    except OSError as err:
        raise WeightsError(f"{path}: cannot read ({err.strerror or err})") from None
    found.state = {name: _materialise(ref, storages) for name, ref in refs.items()}
    return found
