"""TorchScript archives, read with torch.jit.load (it runs no Python from the file)."""

from __future__ import annotations

from typing import Any

from tui.core.errors import ModelFileError
from tui.core.model import ModuleNode, StorageRef, TensorInfo
from tui.core.read.build import TreeBuilder


def load_script(path: str) -> Any:
    import torch  # TorchScript needs torch's own reader

    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - torch raises many kinds here
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ModelFileError(path, f"can't read TorchScript archive ({first})") from None


def script_tree(path: str, module: Any) -> tuple[ModuleNode, TreeBuilder]:
    b = TreeBuilder(path)
    by_ptr: dict[tuple, TensorInfo] = {}

    def info(t: Any, name: str, kind: str) -> TensorInfo:
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype)
        existing = by_ptr.get(key) if t.numel() else None
        if existing is not None:
            existing.names.append(name)
            return existing
        dtype = str(t.dtype).removeprefix("torch.")
        ti = TensorInfo(
            names=[name], shape=tuple(t.shape), dtype=dtype, kind=kind,  # type: ignore[arg-type]
            requires_grad=bool(t.requires_grad), device="cpu",
            storage=StorageRef(str(len(b.order)), dtype, "cpu", t.numel(), path),
            storage_offset=0, stride=tuple(t.stride()),
            original_requires_grad=bool(t.requires_grad),
        )
        by_ptr[key] = ti
        b.order.append(ti)
        return ti

    def type_of(m: Any) -> str:
        try:
            return m._c._type().qualified_name()
        except Exception:  # noqa: BLE001
            return getattr(m, "original_name", type(m).__name__)

    root = b.node("", "", type_of(module), None)
    stack = [(module, root)]
    order: list[tuple[Any, ModuleNode]] = []
    codes = _code_files(path)
    while stack:
        m, node = stack.pop()
        order.append((m, node))
        _settings(m, node, codes)
        for pname, p in m.named_parameters(recurse=False):
            node.params.append((pname, info(p, node.qualify(pname), "parameter")))
        kids = []
        for cname, child in m.named_children():
            kids.append((child, b.node(node.qualify(cname), cname, type_of(child), node)))
        stack.extend(reversed(kids))
    for m, node in order:
        for bname, buf in m.named_buffers(recurse=False):
            node.buffers.append((bname, info(buf, node.qualify(bname), "buffer")))
    return root, b


def _code_files(path: str) -> dict[str, str]:
    """code/… entries of the archive (the top folder name stripped), as text."""
    import zipfile

    out: dict[str, str] = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                rel = info.filename.split("/", 1)[-1]
                if rel.startswith("code/") and rel.endswith(".py") and info.file_size < (4 << 20):
                    out[rel] = z.read(info).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile, ValueError):
        pass
    return out


def _settings(m: Any, node: ModuleNode, codes: dict[str, str]) -> None:
    """node.extra_repr/attributes from the class's constants and its plain attribute values."""
    from tui.core.read.layer_repr import attributes_json, extra_repr
    from tui.core.read.script_attrs import class_fields, code_path

    qual = node.type or ""
    attrs, fields, params = class_fields(codes.get(code_path(qual), ""), qual.rsplit(".", 1)[-1])
    try:  # torch's own objects: attribute lookups may raise anything
        for name in fields:
            v = getattr(m, name, None)
            if v is None or isinstance(v, (bool, int, float, str, tuple, list)):
                attrs[name] = v
        attrs["_parameters"] = {p: getattr(m, p, None) for p in params}
    except Exception:  # noqa: BLE001
        return
    node.extra_repr = extra_repr(qual, attrs)
    node.attributes = attributes_json({k: v for k, v in attrs.items() if not k.startswith("_")})
