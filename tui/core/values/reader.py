"""A tensor's elements from its storage's bytes, in bounded memory.

A `View` is what torch's (storage, storage_offset, size, stride) says; the storage is
located by `tui.core.read.locate` (zip entry, legacy offset, safetensors range, shard).
`ValueReader.pieces` walks any view — non-contiguous, offset, expanded (stride 0),
overlapping — as pieces whose byte span is at most `chunk_bytes`: each piece is one
`pread` into one reused buffer, so memory stays at one chunk whatever the tensor's size.
`ValueReader.ordered` gives the elements in C order (comparing two tensors element by
element); `read` a small view as one array.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tui.core.errors import ModelFileError
from tui.core.read.locate import Blob, FileReader, Storage
from tui.core.read.source import is_url, open_source
from tui.core.values import decode as dec

CHUNK = 8 << 20
Dims = list[tuple[int, int]]  # (size, stride) from outer to inner
BytesFn = Callable[[Blob, int, int], bytes]  # (blob, start, length) → bytes


@dataclass(frozen=True)
class View:
    """Elements of one tensor: storage bytes + dtype, shape, strides, offset (elements)."""

    storage: Storage
    dtype: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int = 0
    name: str = ""

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return dec.itemsize(self.dtype)

    def select(self, index: tuple[int | slice, ...]) -> View:
        """view[index] for ints and slices with a positive step (torch's basic indexing)."""
        if len(index) > len(self.shape):
            raise IndexError(f"{len(index)} indices for {len(self.shape)} dimensions")
        offset, shape, stride = self.offset, [], []
        for i, (size, st) in enumerate(zip(self.shape, self.stride, strict=True)):
            ix = index[i] if i < len(index) else slice(None)
            if isinstance(ix, slice):
                start, stop, step = ix.indices(size)
                if step <= 0:
                    raise IndexError("negative steps are not supported")
                shape.append(len(range(start, stop, step)))
                stride.append(st * step)
                offset += start * st
            else:
                k = int(ix) + size if int(ix) < 0 else int(ix)
                if not 0 <= k < size:
                    raise IndexError(f"index {ix} out of range for size {size}")
                offset += k * st
        return View(self.storage, self.dtype, tuple(shape), tuple(stride), offset, self.name)


def plan(view: View) -> tuple[int, Dims]:
    """(multiplicity, dims): the distinct elements as dims sorted by stride and merged
    where contiguous; expanded (stride-0) dims only repeat elements, so they become a
    multiplicity. Statistics need the elements, not their order."""
    mult, dims = 1, []
    for size, st in zip(view.shape, view.stride, strict=True):
        if size == 1:
            continue
        if st == 0:
            mult *= size
        else:
            dims.append((size, st))
    dims.sort(key=lambda d: -d[1])
    return mult, merge(dims)


def merge(dims: Dims) -> Dims:
    out: Dims = []
    for size, st in dims:
        if out and out[-1][1] == st * size:
            out[-1] = (out[-1][0] * size, st)
        else:
            out.append((size, st))
    return out


def span(dims: Dims) -> int:
    """Storage elements from a piece's first element to its last, inclusive."""
    return 1 + sum((n - 1) * s for n, s in dims)


def pieces(base: int, dims: Dims, limit: int) -> Iterator[tuple[int, Dims]]:
    """Split a strided block into pieces of span and size at most `limit` elements,
    in C order of `dims` (so pieces concatenate to the block's elements in order)."""
    if span(dims) <= limit and math.prod(n for n, _ in dims) <= limit:
        yield base, dims
        return
    (n, s), rest = dims[0], dims[1:]
    rest_span, rest_numel = span(rest), math.prod(m for m, _ in rest)
    if rest_span <= limit and rest_numel <= limit:
        by_span = (limit - rest_span) // s + 1 if s else n  # stride 0 spans nothing more
        k = max(1, min(by_span, limit // rest_numel))
        for i in range(0, n, k):
            yield base + i * s, [(min(k, n - i), s), *rest]
    else:
        for i in range(n):
            yield from pieces(base + i * s, rest, limit)


class ValueReader:
    """Reads views' elements; one descriptor per file, one reused buffer.

    `bytes_read` and `max_piece` count the work (tests bound memory with them)."""

    def __init__(self, chunk_bytes: int = CHUNK, other_bytes: BytesFn | None = None) -> None:
        self.chunk_bytes = max(int(chunk_bytes), 16)
        self.other_bytes = other_bytes  # reads blobs made of parts, computed or cast (the writers')
        self._files = FileReader()
        self._buf: bytearray | None = None
        self._remote: dict[str, Any] = {}  # URL → ByteSource
        self.bytes_read = 0
        self.max_piece = 0

    def close(self) -> None:
        self._files.close()
        self._buf = None
        for src in self._remote.values():
            close = getattr(src, "close", None)
            if close is not None:
                close()
        self._remote.clear()

    def __enter__(self) -> ValueReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, view: View) -> None:
        """Refuse what can't be read: an unknown dtype, or elements outside the storage."""
        if not dec.supported(view.dtype):
            raise ModelFileError(view.storage.blob.path, f"tensor {view.name}: {dec.why_not(view.dtype)}")
        if len(view.shape) != len(view.stride) or min(view.shape, default=1) < 0 \
                or min(view.stride, default=0) < 0 or view.offset < 0:
            raise ModelFileError(view.storage.blob.path, f"tensor {view.name} has a broken shape or stride")
        if view.numel == 0:
            return
        last = view.offset + sum((n - 1) * s for n, s in zip(view.shape, view.stride, strict=True))
        if (last + 1) * view.itemsize > view.storage.blob.nbytes:
            raise ModelFileError(view.storage.blob.path, f"tensor {view.name} points outside its storage")

    def pieces(self, view: View) -> Iterator[tuple[np.ndarray, int]]:
        """(raw elements, multiplicity) in any order; each array is valid until the next."""
        self.check(view)
        if view.numel == 0:
            return
        mult, dims = plan(view)
        limit = max(1, self.chunk_bytes // view.itemsize)
        for base, sub in pieces(view.offset, dims, limit):
            yield self._piece(view, base, sub), mult

    def ordered(self, view: View) -> Iterator[np.ndarray]:
        """Raw elements in C order, each piece valid until the next. When the view walks
        its storage backwards somewhere (transposed, permuted), C order would re-read
        the storage over and over: the view is read whole instead (memory: the view)."""
        self.check(view)
        if view.numel == 0:
            return
        dims = [(n, s) for n, s in zip(view.shape, view.stride, strict=True) if n > 1]
        limit = max(1, self.chunk_bytes // view.itemsize)
        moving = [s for _, s in dims if s > 0]
        if moving != sorted(moving, reverse=True):
            flat = self.read_raw(view).reshape(-1)
            for i in range(0, flat.size, limit):
                yield flat[i:i + limit]
            return
        for base, sub in pieces(view.offset, merge(dims), limit):
            yield self._piece(view, base, sub)

    def read(self, view: View) -> np.ndarray:
        """All elements of a (small) view, decoded, shaped and in C order."""
        return dec.decode(self.read_raw(view), view.dtype)

    def read_raw(self, view: View) -> np.ndarray:
        """All raw elements of a view, shaped and in C order (a new array)."""
        self.check(view)
        raw_dtype = np.dtype(dec.RAW[view.dtype])
        if view.numel == 0:
            return np.zeros(view.shape, raw_dtype)
        keep = [i for i, (n, s) in enumerate(zip(view.shape, view.stride, strict=True)) if n > 1 and s > 0]
        order = sorted(keep, key=lambda i: -view.stride[i])
        dims = merge([(view.shape[i], view.stride[i]) for i in order])
        limit = max(1, self.chunk_bytes // view.itemsize)
        parts = [self._piece(view, b, d).copy() for b, d in pieces(view.offset, dims, limit)]
        flat = np.concatenate(parts) if len(parts) > 1 else parts[0]
        arr = flat.reshape([view.shape[i] for i in order]).transpose(np.argsort(order))
        full = [view.shape[i] if i in keep else 1 for i in range(len(view.shape))]
        arr = np.broadcast_to(arr.reshape(full), view.shape)
        return np.ascontiguousarray(arr)

    # -- bytes -----------------------------------------------------------------
    def _piece(self, view: View, base: int, dims: Dims) -> np.ndarray:
        item = view.itemsize
        raw_dtype = np.dtype(dec.RAW[view.dtype])
        n = span(dims)
        data = self._bytes(view.storage, base * item, n * item)
        flat = np.frombuffer(data, raw_dtype, count=n)
        if len(dims) == 1 and dims[0][1] == 1:
            return flat
        shape = [d for d, _ in dims]
        strides = [s * item for _, s in dims]
        return np.lib.stride_tricks.as_strided(flat, shape, strides, writeable=False).reshape(-1)

    def _bytes(self, storage: Storage, start: int, length: int) -> memoryview:
        blob = storage.blob
        self.max_piece = max(self.max_piece, length)
        self.bytes_read += length
        if blob.data is not None:
            return blob.data[start:start + length]
        if blob.parts is not None or blob.make is not None or blob.cast is not None:
            if self.other_bytes is not None:
                return memoryview(self.other_bytes(blob, start, length))
            raise ModelFileError(blob.path, "values of assembled tensors (DCP) can't be read here")
        if is_url(blob.path):  # remote: ranges through the block cache
            src = self._remote.get(blob.path)
            if src is None:
                src = self._remote[blob.path] = open_source(blob.path)
            data = src.read_at(blob.offset + start, length)
            if len(data) != length:
                raise ModelFileError(blob.path, "the file is shorter than its tensors need (truncated?)")
            return memoryview(data)
        if self._buf is None or len(self._buf) < length:
            self._buf = bytearray(max(length, min(self.chunk_bytes, 1 << 20)))
        view = memoryview(self._buf)[:length]
        self._files.read_into(blob.path, view, blob.offset + start)
        return view
