"""Views (non-contiguous, offset, expanded, shared, overlapping) and bounded memory."""

from __future__ import annotations

import tracemalloc
import warnings

import pytest
import torch
from values_support import check, decoded, make, reference, same

from tui.core.read.reader import open_model
from tui.core.values.reader import ValueReader
from tui.core.values.source import ModelValues
from tui.core.values.stats import compute


class Views(torch.nn.Module):
    """Buffers that are views of one storage, saved whole (torch keeps the views)."""

    def __init__(self) -> None:
        super().__init__()
        base = make("float32", (6, 8, 5), seed=3)
        self.register_buffer("base", base)
        self.register_buffer("transposed", base.transpose(0, 2))
        self.register_buffer("stepped", base[1:, ::3, 1::2])
        self.register_buffer("offset", base[4:])
        self.register_buffer("expanded", base[2, 3:4, :].expand(7, 5))
        self.register_buffer("scalar_expanded", base[0, 0, 0].expand(4, 3))
        self.register_buffer("overlapping", base.reshape(-1).as_strided((20, 6), (3, 1), 7))
        self.register_buffer("empty", base[:, :0])
        self.register_buffer("bf", make("bfloat16", (9, 4), seed=4).t())


def _open(tmp_path, legacy: bool = False):
    m = Views()
    path = tmp_path / "views.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(m, path, _use_new_zipfile_serialization=not legacy)
    return m, open_model(str(path))


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("chunk", [24, 8 << 20])
def test_views_match_torch(tmp_path, legacy, chunk):
    m, mf = _open(tmp_path, legacy)
    refs = dict(m.named_buffers())
    by = {t.name: t for t in mf.tensors}
    assert by["expanded"].stride[0] == 0  # the file really holds the expanded view
    with ModelValues(mf, chunk_bytes=chunk) as mv:
        for name, ref in refs.items():
            check(mv.stats(by[name]), reference(ref), name)
            assert same(mv.reader.read(mv.view(by[name])), decoded(ref)), name
        assert mv.reader.max_piece <= chunk


def test_select_slices_like_torch(tmp_path):
    m, mf = _open(tmp_path)
    by = {t.name: t for t in mf.tensors}
    with ModelValues(mf, chunk_bytes=64) as mv:
        for name in ("base", "transposed", "stepped", "expanded"):
            ref = dict(m.named_buffers())[name]
            v = mv.view(by[name])
            for index in [(0,), (1, slice(None, None, 2)), (-1,), (slice(1, 3), 0),
                          (slice(None), slice(None))]:
                if len(index) > ref.dim():
                    continue
                want = ref[index]
                got = mv.reader.read(v.select(index))
                assert same(got, decoded(want)), (name, index)
        with pytest.raises(IndexError):
            mv.view(by["base"]).select((6,))


def test_memory_stays_bounded_on_a_tensor_larger_than_the_chunk(tmp_path):
    big = make("float32", (1024, 1024), seed=7)  # 4 MiB
    sd = {"big": big, "stepped": big[:, ::2].t(), "half": make("bfloat16", (2048, 1024), seed=8)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(sd, tmp_path / "big.pth")
    mf = open_model(str(tmp_path / "big.pth"))
    chunk = 16 << 10
    for t in mf.tensors:
        with ModelValues(mf, chunk_bytes=chunk) as mv:
            view = mv.view(t)
            tracemalloc.start()
            try:
                got = compute(mv.reader, view)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            check(got, reference(sd[t.name]), t.name)
            storage = big.nbytes if t.name != "half" else sd["half"].nbytes
            assert mv.reader.max_piece <= chunk
            # the table path (bf16) reads once; the others twice (moments, then histogram)
            assert mv.reader.bytes_read <= (storage if t.dtype == "bfloat16" else 2 * storage)
            # one piece and its float64 copy, plus the 65,536-count table: not the tensor
            assert peak < 8 * chunk + (5 << 19), (t.name, peak)


def test_pieces_of_a_sparse_view_stay_small():
    from tui.core.values.reader import pieces, span

    # one row of a wide matrix, read down its column: stride far beyond the chunk
    out = list(pieces(0, [(100, 10_000)], limit=64))
    assert len(out) == 100 and all(span(d) == 1 for _, d in out)
    out = list(pieces(0, [(50, 100), (40, 1)], limit=256))
    assert all(span(d) <= 256 for _, d in out)
    assert sum(n for _, d in out for n, _ in d[:1]) == 50


def test_a_view_past_its_storage_is_refused(tmp_path):
    from tui.core.errors import ModelFileError

    m, mf = _open(tmp_path)
    with ModelValues(mf) as mv:
        v = mv.view(next(t for t in mf.tensors if t.name == "base"))
        bad = type(v)(v.storage, v.dtype, v.shape, v.stride, offset=10)
        with pytest.raises(ModelFileError, match="outside its storage"):
            ValueReader().read(bad)


@pytest.mark.parametrize("chunk", [24, 8 << 20])
def test_ordered_gives_c_order_in_bounded_pieces(tmp_path, chunk):
    """`ordered` (what --diff --values compares) concatenates to the view's C order."""
    import numpy as np

    from tui.core.values.decode import decode

    m, mf = _open(tmp_path)
    by = {t.name: t for t in mf.tensors}
    with ModelValues(mf, chunk_bytes=chunk) as mv:
        for name, ref in m.named_buffers():
            view = mv.view(by[name])
            got = [decode(p, view.dtype).copy() for p in mv.reader.ordered(view)]
            flat = np.concatenate(got) if got else np.zeros(0, np.float32)
            assert same(flat, decoded(ref).reshape(-1)), name
            assert all(p.nbytes <= max(chunk, view.itemsize) for p in mv.reader.ordered(view)
                       if name not in ("transposed", "bf")), name  # permuted: read whole
        assert mv.reader.max_piece <= chunk
