"""Turn an unpickled stand-in graph into the module tree and value tree."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tui.core.human import plural
from tui.core.model import (
    FLOATING,
    Counts,
    ModuleNode,
    QParams,
    StorageRef,
    TensorInfo,
    ValueNode,
    ancestors_union,
)
from tui.core.read.guard import brief
from tui.core.read.records import (
    DType,
    Flag,
    Marker,
    ParamRec,
    StorageRec,
    TensorRec,
    is_standin,
    is_tensor,
    items_of,
    module_state,
    non_persistent,
    type_name,
)
from tui.core.read.repr_cache import ReprCache

MAX_VALUE_NODES = 20_000
MAX_VALUE_DEPTH = 48


# -- module trees ----------------------------------------------------------------
class TreeBuilder:
    """Builds ModuleNodes and unique TensorInfos, in named_modules() order."""

    def __init__(self, storage_path: str = "", storage_paths: dict[int, str] | None = None) -> None:
        self.tensors: dict[int, TensorInfo] = {}  # id(rec) → info
        self.order: list[TensorInfo] = []
        self.modules: dict[str, ModuleNode] = {}
        self.storage_path = storage_path
        self.storage_paths = storage_paths or {}  # id(StorageRec) → its file, when several
        self._storage_refs: dict[int, StorageRef] = {}
        self._texts = ReprCache()

    def info(self, rec: Any, name: str, kind: str, requires_grad_known: bool = True) -> TensorInfo:
        existing = self.tensors.get(id(rec))
        if existing is not None:
            existing.names.append(name)
            return existing
        if type(rec) is ParamRec:
            data, param_index = rec.data, rec.index
        else:
            data, param_index = rec, -1
        rg: bool | None = bool(rec.requires_grad) if requires_grad_known else None
        quantized = data.quantized
        if rg is None and (quantized or data.dtype not in FLOATING):
            rg = False  # only floating-point tensors can require grad: not a guess
        st = data.storage
        ref = None if st is None else self._storage_refs.get(id(st)) or self.storage(st)
        # Positional (10,000 of these on a wide model): TensorInfo's field order.
        info = TensorInfo(
            [name], data.shape, data.dtype, kind, rg,  # type: ignore[arg-type]
            "meta" if st is None else st.location, ref, data.offset, data.stride, quantized,
            self.qparams(data) if quantized else None,
            data.note or (f"subclass {data.subclass}" if data.subclass else ""),
            rg, 0, param_index, data.layout,
        )
        self.tensors[id(rec)] = info
        self.order.append(info)
        return info

    def qparams(self, data: TensorRec) -> QParams | None:
        """Scale and zero point(s) as pickled; per-channel ones are tensors of their own."""
        if not data.quantized:
            return None
        q = data.qparams
        try:
            if len(q) == 2 and not any(isinstance(x, TensorRec) for x in q):
                return QParams(data.quantized, float(q[0]), int(q[1]))
            if len(q) == 3 and all(isinstance(x, TensorRec) for x in q[:2]):
                return QParams(data.quantized, axis=int(q[2]), scales=self.detached(q[0], "scales"),
                               zero_points=self.detached(q[1], "zero_points"))
        except (TypeError, ValueError, OverflowError):
            pass
        return QParams(data.quantized)  # a scheme we don't know: the integers alone

    def detached(self, rec: TensorRec, name: str) -> TensorInfo:
        """A TensorInfo outside the tree (per-channel scales)."""
        return TensorInfo(names=[name], shape=rec.shape, dtype=rec.dtype, kind="buffer",
                          requires_grad=False, storage=self.storage(rec.storage),
                          storage_offset=rec.offset, stride=rec.stride)

    def storage(self, rec: StorageRec | None) -> StorageRef | None:
        if rec is None:
            return None
        ref = self._storage_refs.get(id(rec))
        if ref is None:
            path = self.storage_paths.get(id(rec), self.storage_path)
            ref = StorageRef(rec.key, rec.dtype, rec.location, rec.numel, path)
            self._storage_refs[id(rec)] = ref
        return ref

    def node(self, name: str, key: str, type_: str | None, parent: ModuleNode | None) -> ModuleNode:
        n = ModuleNode(name, key, type_, parent, depth=parent.depth + 1 if parent else 0)
        if parent is not None:
            parent.children.append(n)
        self.modules[name] = n
        return n

    def from_module(self, obj: Any) -> ModuleNode:
        """Walk a pickled nn.Module iteratively (models nest hundreds deep)."""
        seen: set[int] = {id(obj)}
        root = self.node("", "", type_name(obj), None)
        stack: list[tuple[dict, ModuleNode]] = [(module_state(obj) or {}, root)]
        pending_buffers: list[tuple[ModuleNode, dict]] = []
        while stack:
            state, node = stack.pop()
            node.extra_repr, node.attributes = self._texts.texts(node.type, state)
            prefix = node.name + "." if node.name else ""
            for pname, p in items_of(state.get("_parameters")):
                if p is None:
                    node.none_params.append(str(pname))
                elif isinstance(p, (ParamRec, TensorRec)):
                    pname = str(pname)
                    node.params.append((pname, self.info(p, prefix + pname, "parameter")))
            if state.get("_buffers"):
                pending_buffers.append((node, state))
            kids = []
            for cname, child in items_of(state.get("_modules")):
                child_state = None if child is None else module_state(child)
                if child_state is None:
                    node.none_children.append(str(cname))
                    continue
                if id(child) in seen:  # shared module: named_modules lists it once
                    continue
                seen.add(id(child))
                cname = str(cname)
                kids.append((child_state, self.node(prefix + cname, cname, type_name(child), node)))
            stack.extend(reversed(kids))
        # named_buffers() comes after every parameter, in the same module order.
        for node, state in _preorder_pairs(root, pending_buffers):
            skip = non_persistent(state)
            for bname, b in items_of(state.get("_buffers")):
                if b is None or not is_tensor(b):
                    continue
                node.buffers.append((str(bname), self.info(b, node.qualify(str(bname)), "buffer")))
                if bname in skip:
                    node.non_persistent.append(str(bname))
        return root

    def from_flat(self, items: Iterable[tuple[str, Any]], requires_grad_known: bool,
                  alias_by_view: bool = True) -> ModuleNode:
        """A tree from dotted tensor names (state_dict, safetensors): classes unknown."""
        root = self.node("", "", None, None)
        views: dict[tuple, Any] = {}
        for name, rec in items:
            parts = name.split(".")
            node = root
            for i, part in enumerate(parts[:-1]):
                qual = ".".join(parts[: i + 1])
                child = self.modules.get(qual)
                if child is None:
                    child = self.node(qual, part, None, node)
                node = child
            data = rec.data if isinstance(rec, ParamRec) else rec
            if alias_by_view and isinstance(data, TensorRec) and data.storage is not None:
                # state_dict() detaches: tied weights become two tensors over one view.
                view = (id(data.storage), data.offset, data.shape, data.stride, data.dtype)
                rec = views.setdefault(view, rec)
            local = parts[-1]
            if infer_buffer(local, data):
                info = self.info(rec, name, "buffer", requires_grad_known)
                info.inferred = True
                info.requires_grad = info.original_requires_grad = False  # buffers never do
                node.buffers.append((local, info))
            else:
                node.params.append((local, self.info(rec, name, "unknown", requires_grad_known)))
        return root


# Buffer names torch.nn layers register (a file without architecture can't say more).
TORCH_NN_BUFFERS = frozenset({"running_mean", "running_var", "num_batches_tracked"})


def infer_buffer(local: str, data: Any) -> bool:
    """A tensor of a flat file that is surely not a parameter: a torch.nn buffer name, or an
    integer/bool tensor (parameters are floating point)."""
    if local in TORCH_NN_BUFFERS:
        return True
    dtype = getattr(data, "dtype", "")
    return not getattr(data, "quantized", None) and (
        dtype == "bool" or dtype.startswith(("int", "uint")))


def _preorder_pairs(root: ModuleNode, pairs: list[tuple[ModuleNode, dict]]):
    """The (node, state) pairs in the tree's preorder (named_buffers' order)."""
    if not pairs:
        return
    by_node = {id(n): s for n, s in pairs}
    for node in root.walk():
        state = by_node.get(id(node))
        if state is not None:
            yield node, state


# -- rolled-up counts --------------------------------------------------------------
def rollup(root: ModuleNode) -> None:
    """Counts per node over the unique tensors of its subtree, in O(model).

    Tensors bound once are summed bottom-up; tied tensors (several names) are
    added once to every node on the union of their owners' ancestor chains.
    """
    nodes = list(root.walk())
    shared: dict[int, tuple[TensorInfo, list[ModuleNode], bool]] = {}
    for node in nodes:
        node.counts = Counts()
    for node in reversed(nodes):
        c = node.counts
        for group, is_buffer in ((node.params, False), (node.buffers, True)):
            for _, t in group:
                if len(t.names) > 1:
                    shared.setdefault(id(t), (t, [], is_buffer))[1].append(node)
                elif is_buffer:
                    add_buffer(c, t, +1)
                else:
                    add_tensor(c, t, +1)
        if node.parent is not None:
            merge(node.parent.counts, c)
    for t, owners, is_buffer in shared.values():
        for n in ancestors_union(owners):
            (add_buffer if is_buffer else add_tensor)(n.counts, t, +1)


def merge(into: Counts, c: Counts) -> None:
    # Unrolled: a loop over the field names costs twice as much (5,000 merges on wide).
    into.numel += c.numel
    into.trainable += c.trainable
    into.frozen += c.frozen
    into.unknown += c.unknown
    into.tensors += c.tensors
    into.trainable_tensors += c.trainable_tensors
    into.frozen_tensors += c.frozen_tensors
    into.nbytes += c.nbytes
    into.buffer_numel += c.buffer_numel
    into.buffer_nbytes += c.buffer_nbytes
    into.buffers += c.buffers


def add_buffer(c: Counts, t: TensorInfo, sign: int) -> None:
    c.buffers += sign
    c.buffer_numel += sign * t.numel
    c.buffer_nbytes += sign * t.nbytes


def add_tensor(c: Counts, t: TensorInfo, sign: int) -> None:
    n = t.numel
    c.numel += sign * n
    c.tensors += sign
    c.nbytes += sign * t.nbytes
    c.shift(t.requires_grad, sign * n, sign)


# -- value trees -----------------------------------------------------------------
def describe(obj: Any) -> tuple[str, str]:
    """(type, one-line summary) of any unpickled value."""
    if isinstance(obj, ParamRec):
        d = obj.data
        return "parameter", f"Parameter {d.dtype}{list(d.shape)} requires_grad={obj.requires_grad}"
    if isinstance(obj, TensorRec):
        return "tensor", f"tensor {obj.dtype}{list(obj.shape)}"
    if isinstance(obj, Flag):
        return "bool", repr(obj)
    if obj is None or isinstance(obj, (bool, int, float, complex)):
        return type(obj).__name__, repr(obj)
    if isinstance(obj, str):
        text = obj if len(obj) <= 80 else obj[:77] + "…"
        return "str", repr(text)
    if isinstance(obj, (bytes, bytearray)):
        return type(obj).__name__, plural(len(obj), "byte")
    if isinstance(obj, DType):
        return "dtype", obj.name
    if isinstance(obj, Marker):
        return "torch", obj.name
    if isinstance(obj, dict):
        return "dict", f"dict ({plural(len(obj), 'item')})"
    if isinstance(obj, (list, tuple, set, frozenset)):
        return type(obj).__name__, f"{type(obj).__name__} ({plural(len(obj), 'item')})"
    if module_state(obj) is not None:
        return "module", f"module {type_name(obj)}"
    if is_standin(obj):
        return "object", f"object {type_name(obj)}"
    return type(obj).__name__, brief(obj)  # bounded: a slice may hold a "billion laughs" tuple


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k), v
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield str(i), v
    elif isinstance(obj, (set, frozenset)):
        for i, v in enumerate(sorted(obj, key=repr)):
            yield str(i), v
    elif module_state(obj) is not None:
        # A module's own attributes (configs, tokenizers…); its children/tensors are the tree.
        for k, v in module_state(obj).items():
            if isinstance(k, str) and not k.startswith("_"):
                yield k, v
    elif is_standin(obj):
        if obj._mt_args:
            yield "args", obj._mt_args
        if obj._mt_state is not None:
            st = obj._mt_state
            if isinstance(st, dict):
                yield from ((str(k), v) for k, v in st.items())
            else:
                yield "state", st
        if obj._mt_items:
            for i, (k, v) in enumerate(obj._mt_items):
                yield (str(k) if k is not None else str(i)), v


def value_tree(root: Any, key: str = "") -> ValueNode:
    """Iterative, bounded: shared objects shown once, cycles and 'billion laughs'
    graphs cost at most MAX_VALUE_NODES nodes."""
    typ, summary = describe(root)
    top = ValueNode(key or "(file)", typ, summary, path="")
    seen: dict[int, str] = {}
    budget = MAX_VALUE_NODES
    stack: list[tuple[Any, ValueNode, int]] = [(root, top, 0)]
    while stack:
        obj, vnode, depth = stack.pop()
        if isinstance(obj, (str, bytes, int, float, type(None))) or is_tensor(obj):
            continue
        if id(obj) in seen and seen[id(obj)] != vnode.path:
            vnode.summary += f"  (same object as {seen[id(obj)] or '(file)'})"
            continue
        seen[id(obj)] = vnode.path
        if depth >= MAX_VALUE_DEPTH:
            vnode.summary += "  (nested too deep to show)"
            continue
        kids = []
        for k, v in _children(obj):
            if budget <= 0:
                vnode.children.append(ValueNode("…", "more", "more values not shown"))
                break
            budget -= 1
            t, s = describe(v)
            child = ValueNode(k, t, s, path=f"{vnode.path}.{k}" if vnode.path else k)
            vnode.children.append(child)
            kids.append((v, child, depth + 1))
        stack.extend(reversed(kids))
    return top
