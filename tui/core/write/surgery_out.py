"""A Surgery applied to the tensors a state_dict / safetensors file gets.

Names are renamed, dropped or cut to a subtree; a cast swaps each floating storage for
one whose bytes are converted on the way out (one new storage per source storage, so
tied weights and views stay shared). Nothing is read here.
"""

from __future__ import annotations

from typing import Any

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES
from tui.core.surgery import CASTABLE, Surgery, SurgeryError, check, name_map
from tui.core.write.stream import Blob
from tui.core.write.tensors_out import OutTensor, Storage

_PROBE = ".\x00"  # a child name no real key has: maps a module prefix through the surgery


def apply(path: str, tensors: list[OutTensor], s: Surgery | None) -> list[OutTensor]:
    if s is None or s.empty:
        return tensors
    try:
        check(s, [t.name for t in tensors])
        names = name_map(s, [t.name for t in tensors])
    except SurgeryError as e:
        raise ModelFileError(path, str(e)) from None
    out = []
    for t in tensors:
        new = names[t.name]
        if new is not None:
            out.append(OutTensor(new, t.storage, t.dtype, t.shape, t.stride, t.offset))
    return cast(path, out, s.dtype) if s.dtype else out


def cast(path: str, tensors: list[OutTensor], dtype: str) -> list[OutTensor]:
    by_storage: dict[int, list[OutTensor]] = {}
    for t in tensors:
        by_storage.setdefault(id(t.storage), []).append(t)
    new_storage: dict[int, Storage] = {}
    for sid, ts in by_storage.items():
        src = {t.dtype for t in ts}
        if not src & CASTABLE:
            continue
        if len(src) > 1:
            raise ModelFileError(path, f"tensor {ts[0].name} shares its storage with a tensor of "
                                 "another dtype: it can't be cast")
        (src_dt,) = src
        if src_dt == dtype:
            continue
        st = ts[0].storage
        si, di = int(DTYPE_SIZES[src_dt]), int(DTYPE_SIZES[dtype])
        if st.blob.cast is not None or st.blob.nbytes % si:
            raise ModelFileError(path, f"tensor {ts[0].name}: its storage is not a whole number "
                                 f"of {src_dt} elements")
        b = st.blob
        blob = Blob(b.nbytes // si * di, b.path, parts=[b], cast=(src_dt, dtype))
        new_storage[sid] = Storage(blob, dtype, st.location)
    return [OutTensor(t.name, new_storage[id(t.storage)], dtype, t.shape, t.stride, t.offset)
            if id(t.storage) in new_storage else t for t in tensors]


def metadata(meta: Any, s: Surgery | None) -> Any:
    """A state_dict's `_metadata` (module prefix → versions) with the same renames."""
    if not isinstance(meta, dict) or s is None or not s.renames_names:
        return meta
    out: dict = {}
    for key, val in meta.items():
        if not isinstance(key, str):
            continue
        probe = s.out_name(f"{key}{_PROBE}" if key else _PROBE[1:])
        if probe is None or not probe.endswith(_PROBE[1:]):
            continue
        new = probe[: -len(_PROBE[1:])]
        out.setdefault(new[:-1] if new.endswith(".") else new, val)
    return out
