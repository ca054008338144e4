"""Full-model writer: the original pickle with only the changed requires_grad bytes.

A full-model pickle stores each Parameter's requires_grad as one opcode, NEWTRUE
(0x88) or NEWFALSE (0x89). The tracing unpickler notes where each one sits; the
writer flips exactly those bytes and copies everything else — class references
(`__main__.Net`, packages not installed here), attributes, storages — as it is.
Nothing is imported and nothing is re-pickled, so the result loads wherever the
original did, into the same classes, with the same tensors bit for bit.

- The whole file (a full model, or a checkpoint written whole): copy the file, then
  patch the flag bytes in place (same length) and the CRC-32 of data.pkl. The zip
  layout, its 64-byte alignment and the top folder name stay exactly as they were.
- The model part of a checkpoint alone: cut its opcodes out of the patched pickle
  (pickle_slice) and write a new archive with only the storages it uses. Legacy
  (pre-1.6) sources are written back in the legacy layout, zip sources as zips.
- TorchScript: set requires_grad on the loaded module and torch.jit.save it.
"""

from __future__ import annotations

import gc
import os
import pickle
import struct
import zipfile
import zlib

from tui.core.errors import ModelFileError
from tui.core.model import DTYPE_SIZES, ModelFile
from tui.core.read.containers import TorchSource, listing
from tui.core.read.locate import Blob
from tui.core.read.records import module_state
from tui.core.read.source import fileobj, size_of
from tui.core.read.unpickle import load_pickle
from tui.core.write.atomic import AtomicFile, write_all
from tui.core.write.relocate import to_cpu
from tui.core.write.stream import Progress, Sources
from tui.core.write.zipwrite import archive_name, central_offsets, torch_zip

NEWTRUE, NEWFALSE = 0x88, 0x89


def flag_patches(mf: ModelFile) -> list[tuple[int, int]]:
    """(position in the pickle, new byte) for every parameter whose flag must change."""
    src: TorchSource = mf.source.torch
    data = src.pickle_bytes
    if all(t.requires_grad == t.original_requires_grad for t in mf.tensors):
        return []  # the pickle already holds these flags (it is re-read if the file changed)
    traced = None
    patches = []
    for t in mf.tensors:
        if t.requires_grad is None or t.kind != "parameter":
            continue  # state_dict tensors: their flags can only go to a freeze plan
        if t.param_index < 0:
            if t.requires_grad != t.original_requires_grad:
                raise ModelFileError(mf.path, f"{t.name} is not stored as a Parameter: its "
                                     "requires_grad can't be changed in a full-model file")
            continue
        if traced is None:
            traced = _trace(mf.path, src)
        p = traced[t.param_index]
        pos = p.__dict__.get("flag_pos")
        if pos is None or not 0 <= pos < len(data) or data[pos] not in (NEWTRUE, NEWFALSE):
            if bool(p.requires_grad) == t.requires_grad:
                continue
            raise ModelFileError(mf.path, f"can't find where {t.name}'s requires_grad is stored "
                                 "(an unusual pickle): save as state_dict with a freeze plan")
        want = NEWTRUE if t.requires_grad else NEWFALSE
        if data[pos] != want:
            patches.append((pos, want))
    return patches


def _trace(path: str, src: TorchSource) -> list:
    enabled = gc.isenabled()
    gc.disable()  # many small objects, none garbage (the reader does the same)
    try:
        params = load_pickle(src.pickle_bytes, tracing=True).params
    except Exception as e:  # noqa: BLE001 - the fast reader read it; this one must too
        raise ModelFileError(path, f"can't trace the pickle ({type(e).__name__})") from None
    finally:
        if enabled:
            gc.enable()
    if len(params) != len(src.read.params):
        raise ModelFileError(path, "the pickle reads differently on a second pass")
    return params


def patched_pickle(mf: ModelFile, patches: list[tuple[int, int]]) -> bytes:
    data = bytearray(mf.source.torch.pickle_bytes)
    for pos, byte in patches:
        data[pos] = byte
    return bytes(data)


def check_unchanged(mf: ModelFile, sources: Sources) -> None:
    """The pickle in the file is still the one that was read (the file wasn't replaced)."""
    src: TorchSource = mf.source.torch
    if src.container == "zip":
        try:
            with fileobj(src.path) as f, zipfile.ZipFile(f) as z:
                now = z.read(src.prefix + "data.pkl")
        except (OSError, KeyError, zipfile.BadZipFile, ValueError, EOFError):
            now = b""
    else:
        a, b = src.pickle_span
        try:
            now = sources.read(Blob(b, src.path, 0), a, b - a)
        except ModelFileError:
            now = b""
    if now != src.pickle_bytes:
        raise ModelFileError(src.path, "the file changed on disk since it was opened: open it again")


# -- the whole file ----------------------------------------------------------------
def whole_file(af: AtomicFile, mf: ModelFile, patches: list[tuple[int, int]], sources: Sources,
               progress: Progress) -> int:
    src: TorchSource = mf.source.torch
    size = size_of(src.path)
    sources.copy(Blob(size, src.path, 0), af.fd, progress)
    if not patches:
        return size
    if src.container != "zip":
        for pos, byte in patches:
            os.pwrite(af.fd, bytes([byte]), src.pickle_span[0] + pos)
        return size
    entries, start_dir = listing(src.path)
    e = entries[src.prefix + "data.pkl"]
    if not e.stored or e.size != len(src.pickle_bytes):
        raise ModelFileError(src.path, "data.pkl is compressed or changed: can't patch it in place")
    for pos, byte in patches:
        os.pwrite(af.fd, bytes([byte]), e.data + pos)
    new_crc = struct.pack("<I", zlib.crc32(patched_pickle(mf, patches)))
    cd = central_offsets(src.path, start_dir, len(entries))[e.name]
    os.pwrite(af.fd, new_crc, cd + 16)
    old_crc = struct.pack("<I", e.crc)
    if os.pread(af.fd, 4, e.header + 14) == old_crc:
        os.pwrite(af.fd, new_crc, e.header + 14)
    if e.flags & 0x08:  # a data descriptor after the data holds the CRC too (torch writes one)
        sig = os.pread(af.fd, 4, e.data + e.size)
        at = e.data + e.size + (4 if sig == b"PK\x07\x08" else 0)
        if os.pread(af.fd, 4, at) == old_crc:
            os.pwrite(af.fd, new_crc, at)
    _verify_zip(af, src.prefix + "data.pkl", patched_pickle(mf, patches))
    return size


def _verify_zip(af: AtomicFile, name: str, expect: bytes) -> None:
    """Read data.pkl back through zipfile (which checks the CRC) before the rename."""
    try:
        with zipfile.ZipFile(af.tmp) as z:
            ok = z.read(name) == expect
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError):
        ok = False
    if not ok:
        raise ModelFileError(af.target, "the written archive does not read back correctly; nothing was replaced")


def whole_file_cpu(mf: ModelFile, patches: list[tuple[int, int]]) -> tuple[bytes, list[str]]:
    """The whole pickle with every storage on the CPU, and all storage keys (in file order).
    The locations change length, so the file is written anew (write_part), not patched."""
    return to_cpu(patched_pickle(mf, patches))[0], list(mf.source.torch.read.storages)


# -- the model part of a checkpoint ---------------------------------------------------
def model_part(mf: ModelFile, patches: list[tuple[int, int]], cpu: bool = False) -> tuple[bytes, list[str]]:
    """The pickle of the model part alone (every storage on the CPU if `cpu`), and the
    storage keys it uses."""
    from tui.core.write.pickle_slice import SliceError, cut

    try:
        sub = cut(patched_pickle(mf, patches), mf.model_key or "")
        if cpu:
            sub = to_cpu(sub)[0]
        read = load_pickle(sub)
    except (SliceError, pickle.UnpicklingError, IndexError, KeyError) as e:
        raise ModelFileError(mf.path, f"can't cut the model part {mf.model_key!r} out on its own "
                             f"({e}): save it as state_dict, or the whole checkpoint") from None
    if module_state(read.root) is None:
        raise ModelFileError(mf.path, f"{mf.model_key!r} did not cut out as a module")
    return sub, list(read.storages)


def part_size(mf: ModelFile, sub: bytes, keys: list[str]) -> int:
    recs = mf.source.torch.read.storages
    return len(sub) + sum(int(recs[k].numel * DTYPE_SIZES.get(recs[k].dtype, 1)) for k in keys if k in recs)


def write_part(af: AtomicFile, mf: ModelFile, sub: bytes, keys: list[str], sources: Sources,
               progress: Progress, casts: dict[str, tuple[str, str]] | None = None) -> int:
    """`casts`: storage key → (stored, written) dtype, converted on the way (zip only)."""
    src: TorchSource = mf.source.torch
    casts = casts or {}
    if casts and src.container != "zip":
        raise ModelFileError(src.path, "a cast of a legacy-format (torch < 1.6) full model is not "
                             "supported: save it as state_dict")
    if src.container == "zip":
        entries, _ = listing(src.path)
        meta: dict[str, bytes] = {}
        with fileobj(src.path) as f, zipfile.ZipFile(f) as z:
            for name, e in entries.items():
                rel = name[len(src.prefix):]
                if name.startswith(src.prefix) and rel != "data.pkl" and not rel.startswith("data/") \
                        and e.size < (1 << 20):
                    meta[rel] = z.read(name)
        blobs = []
        for k in keys:
            e = entries.get(f"{src.prefix}data/{k}")
            if e is None:
                raise ModelFileError(src.path, f"storage data/{k} is missing from the archive")
            if k in casts:
                a, b = casts[k]
                size = e.size // int(DTYPE_SIZES[a]) * int(DTYPE_SIZES[b])
                source = Blob(e.size, src.path, e.data, crc=e.crc)
                blobs.append((k, Blob(size, src.path, parts=[source], cast=(a, b))))
            else:
                blobs.append((k, Blob(e.size, src.path, e.data, crc=e.crc)))
        return torch_zip(af.fd, sources, progress, archive_name(af.target), sub, blobs, meta)
    if src.container != "legacy":
        raise ModelFileError(src.path, "this file has no storages to write")
    # Legacy: the three header pickles as they are, the model pickle, its keys, its storages.
    head = sources.read(Blob(src.pickle_span[0], src.path, 0), 0, src.pickle_span[0])
    offsets = src.storage_offsets()
    wanted = set(keys)
    order = [k for k in offsets if k in wanted]
    tail = pickle.dumps(order, protocol=2)
    write_all(af.fd, head + sub + tail)
    size = len(head) + len(sub) + len(tail)
    progress.add(size)
    recs = src.read.storages
    for k in order:
        nbytes = int(recs[k].numel * DTYPE_SIZES.get(recs[k].dtype, 1))
        sources.copy(Blob(nbytes + 8, src.path, offsets[k] - 8), af.fd, progress)
        size += nbytes + 8
    return size


# -- TorchScript ---------------------------------------------------------------------
def torchscript(af: AtomicFile, mf: ModelFile) -> int:
    """Load the archive with torch (only ever after a clean scan: save() checks), set the
    flags, torch.jit.save it, and rewrite the zip under the source's archive name with
    fixed dates, so saving twice gives the same bytes."""
    import io

    import torch

    try:
        module = torch.jit.load(mf.path, map_location="cpu")
        by_name = {n: t for t in mf.tensors for n in t.names}
        for name, p in module.named_parameters():
            t = by_name.get(name)
            if t is not None and t.requires_grad is not None:
                p.requires_grad_(bool(t.requires_grad))
        buf = io.BytesIO()
        torch.jit.save(module, buf)
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001 - torch's own errors
        raise ModelFileError(af.target, f"torch.jit.save failed ({str(e).splitlines()[0][:120]})") from None
    return _rename_archive(af, buf.getvalue(), mf.source.torch.prefix)


def _rename_archive(af: AtomicFile, data: bytes, prefix: str) -> int:
    import io

    with zipfile.ZipFile(io.BytesIO(data)) as src, open(af.fd, "wb", closefd=False) as out, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            rest = info.filename.split("/", 1)[1] if "/" in info.filename else info.filename
            if rest == ".data/serialization_id":
                continue  # a fresh random id each save: drop it (torch.jit.load doesn't need it)
            dst.writestr(zipfile.ZipInfo(prefix + rest, date_time=(1980, 1, 1, 0, 0, 0)),
                         src.read(info))
    return os.fstat(af.fd).st_size
