"""The global tensors of a DCP folder as writer input: each one's bytes gathered from
its chunks, which are located only now (on save), never on open.

Each chunk at (file, offset, length) is a small torch.save zip of the chunk tensor:
its directory and data.pkl are read (the restricted unpickler again) to find where
the chunk's bytes sit. A tensor split along dim 0 only is its chunks' bytes one after
the other (copied straight from the .distcp files); any other split is assembled in
slabs of at most CHUNK bytes, so memory stays bounded whatever the tensor's size.
The result is what torch's `format_utils.dcp_to_torch_save` holds, tensor for tensor.
"""

from __future__ import annotations

import math
import struct
import zipfile
from dataclasses import dataclass

from tui.core.errors import ModelFileError
from tui.core.human import plural
from tui.core.model import DTYPE_SIZES, ModelFile, contiguous_stride
from tui.core.read import source
from tui.core.read.bytesource import ByteSource, Window
from tui.core.read.dcp import Checkpoint, Chunk, DcpTensor
from tui.core.read.loading import load as _load
from tui.core.read.locate import Blob, Storage
from tui.core.read.records import ParamRec, TensorRec
from tui.core.write.safetensors import _gather
from tui.core.write.stream import CHUNK, Sources
from tui.core.write.tensors_out import OutTensor

MAX_CHUNK_PICKLE = 1 << 20  # a chunk's data.pkl holds one tensor record


@dataclass
class _Piece:
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]
    blob: Blob  # the chunk's bytes, row-major over `sizes`


def left_out(mf: ModelFile) -> str | None:
    """The note a save of a DCP folder adds: entries that are not tensors are not written."""
    ck: Checkpoint = mf.source.model_obj
    entries = ck.shown_entries()
    if not entries:
        return None
    names = ", ".join(e.fqn for e in entries[:5]) + (", …" if len(entries) > 5 else "")
    what = plural(len(entries), "non-tensor DCP entry", "non-tensor DCP entries")
    return f"left out {what} ({names}): only tensors are written"


def dcp_tensors(mf: ModelFile) -> list[OutTensor]:
    ck: Checkpoint = mf.source.model_obj
    out = []
    opened: dict[str, ByteSource] = {}
    for name, t in ck.shown():
        blob = _assemble(mf.path, t, [_Piece(c.offsets, c.sizes, _chunk_blob(t, c, opened))
                                      for c in t.chunks])
        st = Storage(blob, t.dtype, "cpu")
        out.append(OutTensor(name, st, t.dtype, t.shape, contiguous_stride(t.shape), 0))
    for src in opened.values():
        src.close()
    return out


def _chunk_blob(t: DcpTensor, c: Chunk, opened: dict[str, ByteSource]) -> Blob:
    """Where the bytes of one chunk are (reads the chunk zip's directory and data.pkl)."""
    where = f"{c.file} (chunk of {t.fqn} at byte {c.offset})"
    if c.transforms:
        raise ModelFileError(where, f"the chunk is stored with {', '.join(c.transforms)}: "
                             "not supported")
    src = opened.get(c.file)
    if src is None:
        src = opened[c.file] = source.open_source(c.file)
    win = Window(src, c.offset, c.length)
    if win.size != c.length:
        raise ModelFileError(where, "the .distcp file is shorter than the metadata says")
    try:
        with zipfile.ZipFile(win.fileobj()) as z:
            pkl = next((i for i in z.infolist() if i.filename.endswith("data.pkl")
                        and i.filename.count("/") <= 1), None)
            if pkl is None or pkl.file_size > MAX_CHUNK_PICKLE:
                raise ModelFileError(where, "the chunk is not a torch.save of one tensor")
            prefix = pkl.filename[: -len("data.pkl")]
            read = _load(where, z.read(pkl))
            rec = read.root.data if isinstance(read.root, ParamRec) else read.root
            if not isinstance(rec, TensorRec) or rec.storage is None:
                raise ModelFileError(where, "the chunk is not a torch.save of one tensor")
            info = z.getinfo(f"{prefix}data/{rec.storage.key}")
    except (zipfile.BadZipFile, KeyError, EOFError, ValueError, OSError) as e:
        raise ModelFileError(where, f"the chunk is not a readable torch zip ({e})") from None
    if rec.dtype != t.dtype or tuple(rec.shape) != c.sizes:
        raise ModelFileError(where, f"the chunk holds {rec.dtype}{list(rec.shape)}, the metadata "
                             f"says {t.dtype}{list(c.sizes)}")
    if info.compress_type != zipfile.ZIP_STORED:
        raise ModelFileError(where, "the chunk's storage is compressed")
    head = win.read_at(info.header_offset, 30)
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        raise ModelFileError(where, "the chunk zip has a broken entry")
    n, m = struct.unpack("<HH", head[26:30])
    data = c.offset + info.header_offset + 30 + n + m
    whole = Blob(info.file_size, c.file, data)
    itemsize = int(DTYPE_SIZES[t.dtype])
    ot = OutTensor(t.fqn, Storage(whole, t.dtype, "cpu"), t.dtype, c.sizes, tuple(rec.stride),
                   rec.offset)
    lo, hi = ot.extent()
    if len(ot.stride) != len(ot.shape) or lo < 0 or hi > info.file_size or data + info.file_size \
            > c.offset + c.length:
        raise ModelFileError(where, "the chunk tensor points outside its storage")
    if ot.contiguous:
        return Blob(ot.nbytes, c.file, data + rec.offset * itemsize)
    return Blob(ot.nbytes, c.file, make=lambda s: _gather(ot, s))


def _assemble(path: str, t: DcpTensor, pieces: list[_Piece]) -> Blob:
    itemsize = int(DTYPE_SIZES[t.dtype])
    numel = math.prod(t.shape)
    if numel == 0:
        return Blob(0, data=memoryview(b""))
    if sum(math.prod(p.sizes) for p in pieces) != numel or _overlap(pieces):
        raise ModelFileError(path, f"tensor {t.fqn}: its chunks do not cover it exactly once")
    return Blob(numel * itemsize, parts=_parts(t.shape, pieces, itemsize))


def _overlap(pieces: list[_Piece]) -> bool:
    if len(pieces) > 512:
        return False  # the coverage sum above still catches gaps
    for i, a in enumerate(pieces):
        for b in pieces[i + 1:]:
            if all(ao < bo + bs and bo < ao + as_ for ao, as_, bo, bs
                   in zip(a.offsets, a.sizes, b.offsets, b.sizes, strict=True)):
                return True
    return False


def _parts(shape: tuple[int, ...], pieces: list[_Piece], itemsize: int) -> list[Blob]:
    """The tensor's bytes in order, as blobs: chunks themselves when they are whole rows,
    else slabs of rows assembled in memory (at most CHUNK bytes each)."""
    pieces = [p for p in pieces if math.prod(p.sizes)]
    if not shape or all(p.sizes[1:] == shape[1:] for p in pieces):
        return [p.blob for p in sorted(pieces, key=lambda p: p.offsets[0] if p.offsets else 0)]
    row = math.prod(shape[1:]) * itemsize
    if row > CHUNK:  # one index of dim 0 is too big for a slab: one level down
        out: list[Blob] = []
        for i in range(shape[0]):
            sub = []
            for p in pieces:
                if p.offsets[0] <= i < p.offsets[0] + p.sizes[0]:
                    prow = math.prod(p.sizes[1:]) * itemsize
                    sub.append(_Piece(p.offsets[1:], p.sizes[1:],
                                      _sub(p.blob, (i - p.offsets[0]) * prow, prow)))
            out.extend(_parts(shape[1:], sub, itemsize))
        return out
    rows = max(1, CHUNK // max(row, 1))
    return [Blob((min(shape[0], r0 + rows) - r0) * row,
                 make=_slab(shape, pieces, itemsize, r0, min(shape[0], r0 + rows)))
            for r0 in range(0, shape[0], rows)]


def _sub(blob: Blob, start: int, n: int) -> Blob:
    if blob.parts is None and blob.make is None and blob.data is None:
        return Blob(n, blob.path, blob.offset + start)
    return Blob(n, blob.path, make=lambda s: s.read(blob, start, n))


def _slab(shape: tuple[int, ...], pieces: list[_Piece], itemsize: int, r0: int, r1: int):
    def make(sources: Sources) -> bytes:
        import numpy as np

        unit = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(itemsize)
        dt = np.dtype(unit) if unit else np.dtype((np.void, itemsize))
        out = np.zeros((r1 - r0, *shape[1:]), dtype=dt)
        for p in pieces:
            lo, hi = max(r0, p.offsets[0]), min(r1, p.offsets[0] + p.sizes[0])
            if lo >= hi:
                continue
            prow = math.prod(p.sizes[1:]) * itemsize
            raw = sources.read(p.blob, (lo - p.offsets[0]) * prow, (hi - lo) * prow)
            box = (slice(lo - r0, hi - r0),) + tuple(
                slice(o, o + z) for o, z in zip(p.offsets[1:], p.sizes[1:], strict=True))
            out[box] = np.frombuffer(raw, dtype=dt).reshape((hi - lo, *p.sizes[1:]))
        return out.tobytes()

    return make
