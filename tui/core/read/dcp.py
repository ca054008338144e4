"""torch.distributed.checkpoint (DCP) folders: `.metadata` + `__<rank>_<n>.distcp` files.

`.metadata` is a pickle of `Metadata`; the restricted unpickler (same reader, same
scan) turns its dataclasses into stand-ins whose BUILD state we read:

    Metadata.state_dict_metadata: fqn → TensorStorageMetadata(properties, size, chunks)
                                        | BytesStorageMetadata
    TensorProperties state: (dtype, layout, requires_grad, memory format, pin_memory)
    ChunkStorageMetadata: offsets, sizes (the box of the global tensor a chunk holds)
    Metadata.storage_data: MetadataIndex(fqn, offset, index) → _StorageInfo(relative_path,
                                                                         offset, length)

Opening reads `.metadata` only; the model is the GLOBAL tensors (global shape and
dtype), each knowing which chunk sits in which file at which byte range. Entries
that are not tensors (pickled objects, as BytesStorageMetadata) are shown as values.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from tui.core.errors import ModelFileError
from tui.core.human import plural
from tui.core.human import size as human_size
from tui.core.model import DTYPE_SIZES, ModelFile, ValueNode, contiguous_stride
from tui.core.read import scan, source
from tui.core.read.build import TreeBuilder, rollup
from tui.core.read.loading import load as _load
from tui.core.read.records import DType, StorageRec, TensorRec, is_standin

MAX_METADATA = 1 << 30
MAX_CHUNKS_SHOWN = 16


@dataclass(frozen=True)
class Chunk:
    offsets: tuple[int, ...]  # where the chunk's box starts in the global tensor
    sizes: tuple[int, ...]
    file: str  # full path (or URL) of the .distcp file
    offset: int  # byte range of the chunk's torch.save zip in that file
    length: int
    transforms: tuple[str, ...] = ()  # compression etc. (not read here)

    @property
    def numel(self) -> int:
        return math.prod(self.sizes)


@dataclass(eq=False)
class DcpTensor:
    fqn: str
    dtype: str
    shape: tuple[int, ...]
    chunks: list[Chunk]


@dataclass(eq=False)
class DcpEntry:
    """A non-tensor entry: an object torch.save'd into a .distcp file."""

    fqn: str
    file: str
    offset: int
    length: int


@dataclass(eq=False)
class Checkpoint:
    folder: str
    tensors: list[DcpTensor]
    entries: list[DcpEntry] = field(default_factory=list)
    version: str = ""
    paths: dict[str, tuple] = field(default_factory=dict)  # fqn → keys in the saved dict
    key: str = ""  # the group shown and saved ("" = every tensor)

    def groups(self) -> list[str]:
        """Top-level keys of a nested save ({'model': …, 'optim': …}) that hold tensors."""
        out: dict[str, None] = {}
        for t in self.tensors:
            p = self.paths.get(t.fqn, ())
            if len(p) > 1 and isinstance(p[0], str):
                out[p[0]] = None
        return list(out)

    def shown(self) -> list[tuple[str, DcpTensor]]:
        """(name, tensor) of the chosen group: the name inside it, as its state_dict has it."""
        if not self.key:
            return [(t.fqn, t) for t in self.tensors]
        out = []
        for t in self.tensors:
            p = self.paths.get(t.fqn, ())
            if len(p) > 1 and p[0] == self.key:
                out.append((".".join(str(x) for x in p[1:]), t))
        return out

    def shown_entries(self) -> list[DcpEntry]:
        if not self.key:
            return self.entries
        return [e for e in self.entries if self.paths.get(e.fqn, ())[:1] == (self.key,)]


def is_dcp(names: list[str]) -> bool:
    return ".metadata" in names and any(n.endswith(".distcp") for n in names)


def _name(obj: Any) -> str:
    return type(obj)._mt_name if is_standin(obj) else type(obj).__name__


def _state(obj: Any) -> Any:
    st = obj._mt_state if is_standin(obj) else None
    if isinstance(st, tuple) and len(st) == 2 and isinstance(st[0], dict):
        st = st[0]  # (dict, slots) state of a dataclass with __slots__
    return st


def _ints(path: str, v: Any, what: str) -> tuple[int, ...]:
    if is_standin(v) and v._mt_args:
        v = v._mt_args[0]
    try:
        out = tuple(int(x) for x in v)
    except (TypeError, ValueError):
        raise ModelFileError(path, f"DCP metadata: {what} is not a list of integers") from None
    if any(x < 0 or x >= 1 << 62 for x in out):
        raise ModelFileError(path, f"DCP metadata: {what} has an impossible value")
    return out


def read_metadata(folder: str, data: bytes) -> tuple[Checkpoint, Any]:
    """The checkpoint described by the bytes of `.metadata` (and the unpickler's result)."""
    meta_path = source.join(folder, ".metadata")
    read = _load(meta_path, data)
    root = read.root
    st = _state(root)
    if _name(root) != "Metadata" or not isinstance(st, dict) \
            or not isinstance(st.get("state_dict_metadata"), dict):
        raise ModelFileError(meta_path, "not a torch.distributed.checkpoint Metadata pickle")
    where: dict[tuple, tuple] = {}
    storage = st.get("storage_data")
    if isinstance(storage, dict):
        for idx, info in storage.items():
            i_st, s_st = _state(idx), _state(info)
            if not isinstance(i_st, dict) or not isinstance(s_st, dict):
                raise ModelFileError(meta_path, "DCP metadata: a storage entry is malformed")
            rel = s_st.get("relative_path")
            if not isinstance(rel, str) or not rel or os.path.basename(rel) != rel \
                    or rel in (".", "..") or "\\" in rel:
                raise ModelFileError(meta_path, f"DCP metadata names a bad file {rel!r:.60}")
            off, length = _ints(meta_path, (s_st.get("offset"), s_st.get("length")), "a byte range")
            tds = s_st.get("transform_descriptors") or ()
            loc = (source.join(folder, rel), off, length,
                   tuple(str(t) for t in tds) if isinstance(tds, (list, tuple)) else ())
            fqn = i_st.get("fqn")
            offs = i_st.get("offset")
            where[(fqn, _ints(meta_path, offs, "a chunk offset") if offs is not None else None)] = loc
    ck = Checkpoint(folder, [], version=str(st.get("version") or ""))
    planner = st.get("planner_data")
    if isinstance(planner, dict):  # fqn → the keys it had in the nested dict that was saved
        ck.paths = {k: tuple(v) for k, v in planner.items()
                    if isinstance(k, str) and isinstance(v, (tuple, list))
                    and all(isinstance(x, (str, int)) for x in v)}
    for fqn, md in st["state_dict_metadata"].items():
        if not isinstance(fqn, str):
            raise ModelFileError(meta_path, "DCP metadata: a key is not a string")
        kind, m = _name(md), _state(md)
        if kind == "BytesStorageMetadata":
            loc = where.get((fqn, None))
            if loc is not None:
                ck.entries.append(DcpEntry(fqn, loc[0], loc[1], loc[2]))
            continue
        if kind != "TensorStorageMetadata" or not isinstance(m, dict):
            raise ModelFileError(meta_path, f"DCP metadata: entry {fqn!r:.60} is of an unknown kind")
        ck.tensors.append(_tensor(meta_path, fqn, m, where))
    return ck, read


def _tensor(path: str, fqn: str, m: dict, where: dict[tuple, tuple]) -> DcpTensor:
    props = _state(m.get("properties"))
    dt = props[0] if isinstance(props, tuple) and props else (
        props.get("dtype") if isinstance(props, dict) else None)
    if not isinstance(dt, DType) or dt.name not in DTYPE_SIZES:
        raise ModelFileError(path, f"DCP metadata: tensor {fqn!r:.60} has no known dtype")
    shape = _ints(path, m.get("size"), f"the size of {fqn!r:.60}")
    if math.prod(shape) >= 1 << 62:
        raise ModelFileError(path, f"DCP metadata: tensor {fqn!r:.60} has an impossible shape")
    chunks = []
    for c in m.get("chunks") or ():
        cs = _state(c)
        if not isinstance(cs, dict):
            raise ModelFileError(path, f"DCP metadata: a chunk of {fqn!r:.60} is malformed")
        offs = _ints(path, cs.get("offsets"), "a chunk offset")
        sizes = _ints(path, cs.get("sizes"), "a chunk size")
        if len(offs) != len(shape) or len(sizes) != len(shape) or any(
                o + s > d for o, s, d in zip(offs, sizes, shape, strict=True)):
            raise ModelFileError(path, f"DCP metadata: a chunk of {fqn!r:.60} lies outside the tensor")
        loc = where.get((fqn, offs))
        if loc is None:
            raise ModelFileError(path, f"DCP metadata: a chunk of {fqn!r:.60} has no storage entry")
        chunks.append(Chunk(offs, sizes, *loc))
    return DcpTensor(fqn, dt.name, shape, chunks)


def open_dcp(folder: str, key: str | None = None,
             preferred: tuple[str, ...] = ()) -> tuple[ModelFile, Checkpoint]:
    """The model of a DCP folder, reading its `.metadata` and nothing else. A nested save
    ({'model': …, 'optim': …}) opens like a checkpoint: one group is the model (`key`, else
    the first of `preferred` present, else the largest), its names as inside the group."""
    meta_path = source.join(folder, ".metadata")
    ck, read = read_metadata(folder, source.read_all(meta_path, MAX_METADATA))
    groups = ck.groups()
    if key is not None and key != "" and key not in groups:
        raise ModelFileError(folder, f"no model under key {key!r} (models found: "
                             f"{', '.join(groups) or 'none'})")
    if groups:
        sizes = {g: sum(1 for t in ck.tensors if ck.paths.get(t.fqn, ())[:1] == (g,)) for g in groups}
        ck.key = key or next((g for g in preferred if g in groups), None) or max(groups, key=sizes.get)
    b = TreeBuilder(folder)
    recs = []
    for i, (name, t) in enumerate(ck.shown()):
        numel = math.prod(t.shape)
        note = _layout(t) if len(t.chunks) > 1 else ""
        recs.append((name, TensorRec(StorageRec(t.fqn, t.dtype, "cpu", numel), 0, t.shape,
                                     contiguous_stride(t.shape), False, t.dtype, note=note,
                                     index=i)))
    root = b.from_flat(recs, requires_grad_known=False, alias_by_view=False)
    rollup(root)
    ordered = list(b.order)
    for i, t in enumerate(ordered):
        t.uid = i
    mf = ModelFile(path=folder, format="checkpoint" if groups else "state_dict", container="dcp",
                   root=root, tensors=ordered, values=_values(ck), warnings=_findings(read),
                   modules=b.modules, requires_grad_stored=False, model_key=ck.key,
                   model_keys=groups)
    return mf, ck


def _findings(read: Any) -> list:
    """The scan's findings, less the one every DCP save makes: StorageMeta.checkpoint_id is
    pathlib.PosixPath('<the folder>'), a path built from strings (it runs nothing)."""
    out = scan.findings(read)
    sm = _state(_state(read.root).get("storage_meta"))
    cid = sm.get("checkpoint_id") if isinstance(sm, dict) else None
    if not (is_standin(cid) and type(cid)._mt_module == "pathlib"
            and type(cid)._mt_name in ("PosixPath", "WindowsPath", "Path", "PurePosixPath")
            and all(isinstance(a, str) for a in cid._mt_args) and not cid._mt_kwargs
            and cid._mt_state is None and not cid.__dict__.get("_mt_called")):
        return out
    benign = f"pathlib.{type(cid)._mt_name}"
    return [f for f in out if not (f.callable == benign and f.where == "storage_meta.checkpoint_id")]


def _layout(t: DcpTensor) -> str:
    parts = [f"{os.path.basename(c.file)}@{c.offset} "
             + "[" + ", ".join(f"{o}:{o + s}" for o, s in zip(c.offsets, c.sizes, strict=True)) + "]"
             for c in t.chunks[:4]]
    more = f", … {len(t.chunks) - 4} more" if len(t.chunks) > 4 else ""
    return f"DCP: {len(t.chunks)} chunks: " + "; ".join(parts) + more


def _values(ck: Checkpoint) -> ValueNode:
    """Non-tensor entries as values, then where every tensor's chunks are."""
    entries = [ValueNode(e.fqn, "object", f"pickled object, {human_size(e.length)} in "
                         f"{os.path.basename(e.file)} at byte {e.offset} (not read)", path=e.fqn)
               for e in ck.entries]
    layout = []
    for t in ck.tensors:
        kids = [ValueNode(str(i), "chunk",
                          f"[{', '.join(f'{o}:{o + s}' for o, s in zip(c.offsets, c.sizes, strict=True))}]"
                          f" in {os.path.basename(c.file)} at byte {c.offset}, {human_size(c.length)}",
                          path=f"(chunks).{t.fqn}.{i}")
                for i, c in enumerate(t.chunks[:MAX_CHUNKS_SHOWN])]
        if len(t.chunks) > MAX_CHUNKS_SHOWN:
            kids.append(ValueNode("…", "more", f"{len(t.chunks) - MAX_CHUNKS_SHOWN} more chunks"))
        layout.append(ValueNode(t.fqn, "chunks", f"{t.dtype}{list(t.shape)} in {len(t.chunks)} "
                                f"chunk{'s' if len(t.chunks) != 1 else ''}", kids,
                                path=f"(chunks).{t.fqn}"))
    chunks = ValueNode("(chunks)", "dict", f"where the tensors' chunks are ({len(ck.tensors):,})",
                       layout, path="(chunks)")
    summary = (f"DCP checkpoint {ck.version}: {plural(len(ck.tensors), 'tensor')}, "
               f"{plural(len(ck.entries), 'other entry', 'other entries')}").replace(
                   "checkpoint :", "checkpoint:")
    return ValueNode("(file)", "dcp", summary, [*entries, chunks])
