"""open_model(): detect the format from content and build a ModelFile."""

from __future__ import annotations

import gc
import math
import os
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tui.core.errors import ModelFileError, public
from tui.core.human import plural
from tui.core.model import Finding, ModelFile, ModuleNode, ValueNode, contiguous_stride
from tui.core.read import source
from tui.core.read.build import TreeBuilder, rollup, value_tree
from tui.core.read.containers import TorchSource, is_zip, open_pickle_stream, open_zip, read_zip
from tui.core.read.probe import head_kind, read_head
from tui.core.read.records import StorageRec, TensorRec, is_state_dict, module_state
from tui.core.read.safetensors import (
    STEntry,
    find_index,
    read_header,
    read_index,
)
from tui.core.write.freeze_plan import apply_plan_beside

CLASSIC_STARTS = b"\x80(]}cI"  # how torch.save and pickle.dump start: a broken one is still one


def _reworded(e: ModelFileError, problem: str) -> ModelFileError:
    new = ModelFileError(e.path, problem)
    new.findings = getattr(e, "findings", [])  # type: ignore[attr-defined]
    return new


# Checkpoint keys that usually hold "the" model, best first.
PREFERRED_KEYS = ("model", "state_dict", "model_state_dict", "module", "net", "network",
                  "model_state", "weights", "params", "ema", "model_ema")


# Checkpoint entries that hold training state, never a model.
NOT_MODELS = re.compile(r"optim|sched|callbacks|^loops$", re.IGNORECASE)


@dataclass
class Candidate:
    key: str  # path of keys joined with "/"
    obj: Any
    kind: str  # "module" | "state_dict"
    size: int = 0


@dataclass(eq=False)
class SourceInfo:
    """What the writers need to get back at the bytes (reader-private)."""

    kind: str  # "torch" | "safetensors" | "torchscript" | "sharded-torch"
    torch: TorchSource | None = None
    st_entries: dict[str, STEntry] = field(default_factory=dict)
    shards: list[TorchSource] = field(default_factory=list)
    model_obj: Any = None  # the module / state-dict object the tree was built from
    script: Any = None  # TorchScript: (name, tensor record) in state_dict() order
    metadata: dict = field(default_factory=dict)
    stale: bool = False  # a save replaced the file: storage offsets no longer hold


def open_model(path: str, key: str | None = None) -> ModelFile:
    """Read the structure of a model file, directory or index without running it."""
    # Opening makes ~100 small objects per tensor, all kept: the cyclic GC would rescan
    # them over and over (3x the open time of a 10k-tensor model) for nothing to free.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _open(os.fspath(path), key)
    finally:
        if enabled:
            gc.enable()


def _open(path: str, key: str | None) -> ModelFile:
    if source.is_url(path):
        from tui.core.read.remote import forget

        forget()  # a new open asks each object's info (size, ETag) again
    what, size = source.kind(path)
    if what == "dir":
        mf = _open_dir(path, key)
    else:
        if what != "file":
            raise ModelFileError(path, "not a regular file")
        head = read_head(path)
        container = head_kind(path, head, size)
        if container == "index":
            mf = _open_index(path)
        elif container == "zip":
            mf = _open_zip(path, key)
        elif container == "safetensors":
            mf = _open_safetensors(path)
        else:
            # torch.load reads any other file as a legacy tar or a pickle, whatever its
            # first opcode: so does modeltree (nothing is run either way).
            try:
                src = open_pickle_stream(path)
            except ModelFileError as e:
                if head[0] in CLASSIC_STARTS:
                    raise
                raise _reworded(e, f"not a PyTorch or safetensors file ({e.problem})") from None
            mf = _from_torch(path, src, key)
    if not mf.file_size:  # folders and indexes set it: their weights files only
        mf.file_size = _folder_size(path) if what == "dir" else size
    mf.path = public(mf.path)  # shown and printed: no credentials (the sources keep the URL)
    apply_plan_beside(mf)
    return mf


MODEL_EXTS = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")


class FolderOfModels(ModelFileError):
    """A folder holding several model files, not one model: `choices` lists them."""

    def __init__(self, path: str, choices: list[str]) -> None:
        names = ", ".join(os.path.basename(c) for c in choices[:5])
        more = f" and {len(choices) - 5} more" if len(choices) > 5 else ""
        super().__init__(path, f"a folder of {len(choices)} model files, not one model "
                         f"({names}{more}): open one of them")
        self.choices = choices


def model_files(path: str) -> list[str]:
    """The model files directly in a folder, sorted."""
    names = sorted(source.listdir(path))
    return [source.join(path, n) for n in names if n.endswith(MODEL_EXTS)
            and source.isfile(source.join(path, n))]


def _folder_size(path: str) -> int:
    if source.is_url(path):
        return 0  # not known without asking for every object's size
    return sum(e.stat().st_size for e in os.scandir(path) if e.is_file())


def _open_zip(path: str, key: str | None) -> ModelFile:
    zipped = read_zip(path)  # parsed once: a 10k-tensor file has 10k entries
    if zipped.prefix + "constants.pkl" in zipped.names:
        return _open_torchscript(path, zipped)
    return _from_torch(path, open_zip(path, zipped), key)


# -- torch.save pickles ---------------------------------------------------------------
def _from_torch(path: str, src: TorchSource, key: str | None) -> ModelFile:
    root_obj = src.read.root
    warnings = src.findings()
    candidates = find_models(root_obj)
    fmt, chosen = _classify(root_obj, candidates)
    if key is not None:
        match = [c for c in candidates if c.key == key]
        if not match:
            keys = ", ".join(c.key for c in candidates) or "none"
            raise ModelFileError(path, f"no model under key {key!r} (models found: {keys})")
        chosen = match[0]
    mf = _model_file(path, fmt, src.container, root_obj, chosen, warnings)
    mf.model_keys = [c.key for c in candidates]
    mf.source = SourceInfo("torch", torch=src, model_obj=chosen.obj if chosen else None)
    return mf


def _classify(root_obj: Any, candidates: list[Candidate]) -> tuple[str, Candidate | None]:
    if candidates and candidates[0].key == "":
        return ("full_model" if candidates[0].kind == "module" else "state_dict"), candidates[0]
    if candidates:
        return "checkpoint", pick_default(candidates)
    return "value", None


def pick_default(candidates: list[Candidate]) -> Candidate:
    by_key = {c.key: c for c in candidates}
    for k in PREFERRED_KEYS:
        if k in by_key:
            return by_key[k]
    return max(candidates, key=lambda c: c.size)


_LEAVES = (str, bytes, int, float, type(None))  # values that are never a model


def find_models(obj: Any, max_depth: int = 3) -> list[Candidate]:
    """Modules and state_dicts in the object, breadth-first, the top one first."""
    out: list[Candidate] = []
    seen: set[int] = set()
    queue: deque[tuple[str, Any, int]] = deque([("", obj, 0)])
    while queue:
        key, o, depth = queue.popleft()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if module_state(o) is not None:
            out.append(Candidate(key, o, "module", _module_size(o)))
            continue
        if is_state_dict(o):
            out.append(Candidate(key, o, "state_dict", len(o)))
            continue
        if depth >= max_depth:
            continue
        if isinstance(o, dict):
            for k, v in o.items():
                if isinstance(v, _LEAVES):
                    continue  # a vocabulary of 200,000 ints holds no model: don't queue them
                if isinstance(k, str) and NOT_MODELS.search(k):
                    continue  # optimizer moments look like state_dicts but are not models
                if isinstance(k, (str, int)):
                    queue.append((f"{key}/{k}" if key else str(k), v, depth + 1))
        elif isinstance(o, (list, tuple)) and len(o) <= 64:
            for i, v in enumerate(o):
                queue.append((f"{key}/{i}" if key else str(i), v, depth + 1))
    return out


def _module_size(obj: Any) -> int:
    st = module_state(obj) or {}
    return len(st.get("_modules") or {}) + len(st.get("_parameters") or {}) + 1000


def _model_file(path: str, fmt: str, container: str, root_obj: Any, chosen: Candidate | None,
                warnings: list[Finding]) -> ModelFile:
    b = TreeBuilder(path)
    root: ModuleNode | None = None
    rg_stored = True
    if chosen is not None and chosen.kind == "module":
        root = b.from_module(chosen.obj)
    elif chosen is not None:
        rg_stored = False
        root = b.from_flat(((str(k), v) for k, v in chosen.obj.items()), requires_grad_known=False)
    if root is not None:
        rollup(root)
    values = value_tree(root_obj)
    mf = ModelFile(path=path, format=fmt, container=container, root=root,
                   tensors=_ordered(b), values=values, warnings=warnings,
                   model_key=chosen.key if chosen else None, requires_grad_stored=rg_stored,
                   modules=b.modules)
    return mf


def _ordered(b: TreeBuilder) -> list:
    params = [t for t in b.order if t.kind != "buffer"]
    bufs = [t for t in b.order if t.kind == "buffer"]
    out = params + bufs
    for i, t in enumerate(out):
        t.uid = i
    return out


# -- TorchScript -------------------------------------------------------------------
def _open_torchscript(path: str, zipped: Any) -> ModelFile:
    from tui.core.read.torchscript import open_script, script_findings, script_tree

    try:
        src, classes = open_script(path, zipped)
        root, b, entries = script_tree(path, src.read.root, classes)
    except ModelFileError as e:
        raise _reworded(e, f"can't read TorchScript archive ({e.problem})") from None
    rollup(root)
    values = ValueNode("(file)", "module", f"TorchScript module {root.type}")
    mf = ModelFile(path=path, format="torchscript", container="torchscript", root=root,
                   tensors=_ordered(b), values=values, modules=b.modules, model_key="",
                   warnings=script_findings(src, classes))
    mf.source = SourceInfo("torchscript", torch=src, model_obj=src.read.root)
    mf.source.script = entries  # (name, record) in state_dict() order
    return mf


# -- safetensors -----------------------------------------------------------------
def _st_recs(entries: list[STEntry]) -> list[tuple[str, TensorRec]]:
    recs = []
    for i, e in enumerate(entries):
        storage = StorageRec(e.name, e.dtype, "cpu", math.prod(e.shape))
        recs.append((e.name, TensorRec(storage, 0, e.shape, contiguous_stride(e.shape), False,
                                       e.dtype, index=i)))
    return recs


def _open_safetensors(path: str) -> ModelFile:
    entries, meta = read_header(path)
    return _flat_file(path, "safetensors", "safetensors", entries, meta)


def _flat_file(path: str, fmt: str, container: str, entries: list[STEntry], meta: dict) -> ModelFile:
    b = TreeBuilder(path)
    recs = _st_recs(entries)
    root = b.from_flat(recs, requires_grad_known=False, alias_by_view=False)
    by_name = {e.name: e for e in entries}
    for t in b.order:  # each tensor's bytes: its own file and offset
        e = by_name[t.name]
        t.storage = type(t.storage)(t.storage.key, t.dtype, "cpu", t.storage.numel, e.path, e.offset)
    rollup(root)
    values = ValueNode("(file)", "dict", plural(len(entries), "tensor"),
                       children=[ValueNode(k, "str", repr(v)[:80], path=f"__metadata__.{k}")
                                 for k, v in meta.items()])
    mf = ModelFile(path=path, format="safetensors", container=container, root=root,
                   tensors=_ordered(b), values=values, modules=b.modules,
                   requires_grad_stored=False, model_key="")
    mf.source = SourceInfo("safetensors", st_entries=by_name, metadata=meta)
    return mf


def _open_dir(path: str, key: str | None = None) -> ModelFile:
    """One model only when the folder is one: a DCP folder, an index, or exactly one
    weights file."""
    from tui.core.read import dcp  # folders only (keeps it off a file's start-up)

    names = source.listdir(path)
    if dcp.is_dcp(names):  # .metadata + *.distcp: one model, whatever else sits beside it
        mf, checkpoint = dcp.open_dcp(path, key, PREFERRED_KEYS)
        mf.source = SourceInfo("dcp", model_obj=checkpoint)
        return mf
    index = find_index(path)
    if index is not None:
        return _open_index(index, shown_path=path)
    files = model_files(path)
    if not files:
        raise ModelFileError(path, "a folder without model files or an index.json")
    if len(files) > 1:
        raise FolderOfModels(path, files)
    return _open(files[0], key)


def _open_index(index: str, shown_path: str | None = None) -> ModelFile:
    weight_map, shards, meta = read_index(index)
    shown = shown_path or index
    mf = _open_shards(index, shown, weight_map, shards, meta)
    mf.file_size = sum(source.size_of(s) for s in shards)
    return mf


def _open_shards(index: str, shown: str, weight_map: dict, shards: list[str], meta: dict) -> ModelFile:
    if all(s.endswith(".safetensors") for s in shards):
        entries: list[STEntry] = []
        for s in shards:
            entries.extend(e for e in read_header(s)[0] if weight_map.get(e.name) == s)
        order = {n: i for i, n in enumerate(weight_map)}
        entries.sort(key=lambda e: order.get(e.name, len(order)))
        return _flat_file(shown, "safetensors", "sharded-safetensors", entries, meta)
    return _open_torch_shards(shown, weight_map, shards)


def _open_torch_shards(shown: str, weight_map: dict[str, str], shards: list[str]) -> ModelFile:
    merged: dict[str, Any] = {}
    sources: list[TorchSource] = []
    warnings: list[Finding] = []
    for s in shards:
        with source.fileobj(s) as f:
            head = f.read(4)
        src = open_zip(s) if is_zip(head) else open_pickle_stream(s)
        sources.append(src)
        warnings.extend(src.findings())
        if not is_state_dict(src.read.root):
            raise ModelFileError(s, "shard is not a state_dict")
        for k, v in src.read.root.items():
            if weight_map.get(k, s) == s:
                merged[k] = v
    b = TreeBuilder(shown, {id(r): src.path for src in sources for r in src.read.storages.values()})
    root = b.from_flat(merged.items(), requires_grad_known=False)
    rollup(root)
    mf = ModelFile(path=shown, format="state_dict", container="sharded-torch", root=root,
                   tensors=_ordered(b), values=ValueNode("(file)", "dict", plural(len(merged), "tensor")),
                   warnings=warnings, modules=b.modules, requires_grad_stored=False, model_key="")
    mf.source = SourceInfo("sharded-torch", shards=sources, model_obj=merged)
    return mf

