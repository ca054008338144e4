"""Extract and cast for a full-model output, on the pickle's opcodes (nothing re-pickled).

- extract: the submodule's opcodes are cut out of the (flag-patched) pickle
  (pickle_slice.find_module), so the saved object is that module itself, with its own
  class reference, attributes and only the storages it uses;
- cast: every floating typed-storage GLOBAL (`torch FloatStorage`, …) is rewritten to
  the target's (`torch HalfStorage`), and those storages' bytes are converted while
  they are copied. Element counts, offsets and strides stay as they are.

Rename and drop are refused: they would no longer match the class's code.
"""

from __future__ import annotations

import pickle
import pickletools

from tui.core.errors import ModelFileError
from tui.core.model import ModelFile
from tui.core.read.records import STORAGE_DTYPES, module_state
from tui.core.read.unpickle import load_pickle
from tui.core.surgery import CASTABLE, Surgery
from tui.core.write.full import patched_pickle
from tui.core.write.state_dict import TYPED


def refuse_names(mf: ModelFile, s: Surgery) -> None:
    if s.renames or s.drops:
        what = "rename" if s.renames else "drop"
        raise ModelFileError(mf.path, f"{what} can't apply to a full model (the class's code "
                             "expects its own names): save as state_dict or safetensors")


def model_pickle(mf: ModelFile, patches: list[tuple[int, int]], s: Surgery
                 ) -> tuple[bytes, list[str], dict[str, tuple[str, str]]]:
    """The output pickle, its storage keys, and key → (stored, written) dtype of cast ones."""
    from tui.core.write.pickle_slice import SliceError, find_module, walk
    from tui.core.write.pickle_slice import extract as slice_out

    where = f"{mf.model_key or '(model)'}" + (f" / {s.extract}" if s.extract else "")
    try:
        w = walk(patched_pickle(mf, patches))
        start, end, _ = find_module(w, mf.model_key or "", s.extract or "")
        sub = slice_out(w, start, end)
    except (SliceError, pickle.UnpicklingError, IndexError, KeyError) as e:
        raise ModelFileError(mf.path, f"can't cut {where} out on its own ({e}): save it as "
                             "state_dict") from None
    casts: dict[str, tuple[str, str]] = {}
    if s.dtype:
        stored = load_pickle(sub).storages
        sub = retype(sub, s.dtype)
        for k, rec in load_pickle(sub).storages.items():
            if rec.dtype != stored[k].dtype:
                casts[k] = (stored[k].dtype, rec.dtype)
    read = load_pickle(sub)
    if module_state(read.root) is None:
        raise ModelFileError(mf.path, f"{where} did not cut out as a module")
    for t in read.tensors:
        if s.dtype and t.dtype in CASTABLE and t.dtype != s.dtype:
            raise ModelFileError(mf.path, f"a {t.dtype} tensor is stored in a way this cast "
                                 "can't rewrite in a full model: save as state_dict")
    return sub, list(read.storages), casts


def retype(data: bytes, dtype: str) -> bytes:
    """Rewrite floating typed-storage GLOBALs to the storage class of `dtype`."""
    target = TYPED[dtype]
    ops = list(pickletools.genops(data))
    out, last = bytearray(), 0
    for i, (op, arg, pos) in enumerate(ops):
        if op.name != "GLOBAL":
            continue
        mod, _, name = str(arg).partition(" ")
        if mod == "torch" and STORAGE_DTYPES.get(name) in CASTABLE and name != target:
            end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
            out += data[last:pos] + f"c{mod}\n{target}\n".encode()
            last = end
    out += data[last:]
    return bytes(out)
