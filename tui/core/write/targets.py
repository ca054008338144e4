"""Save targets: the extension and the format agree (the CLI and the save dialog).

A `.safetensors` target is safetensors; choosing safetensors gives the path that
extension, and choosing another format takes it away again.
"""

from __future__ import annotations

SAFETENSORS_EXT = ".safetensors"


def target_format(out: str, fmt: str | None) -> tuple[str | None, str | None]:
    """(format to write, usage error). A `.safetensors` target means safetensors; a
    --format that contradicts it is a usage error; other targets keep the default."""
    wants_st = out.lower().endswith(SAFETENSORS_EXT)
    if fmt is None:
        return ("safetensors" if wants_st else None), None
    if wants_st and fmt != "safetensors":
        return None, (f"--format {fmt} contradicts the target {out!r}: a .safetensors file holds "
                      "safetensors (drop --format or change the extension)")
    return fmt, None


TORCH_EXTS = (".pth", ".pt", ".bin", ".ckpt", ".tar")


def with_extension(path: str, fmt: str) -> str:
    """`path` with the extension `fmt` needs: .safetensors for safetensors; for a torch
    format, a .safetensors name becomes .pth (other names are left as typed)."""
    root, ext = _split(path)
    if fmt == "safetensors":
        return path if ext == SAFETENSORS_EXT else root + SAFETENSORS_EXT
    if ext == SAFETENSORS_EXT:
        return root + ".pth"
    return path


def format_for_path(path: str, current: str, torch_format: str) -> str:
    """The format a typed path asks for: safetensors for a .safetensors name; a torch
    extension (.pth, .pt, …) while safetensors is chosen: `torch_format`; else `current`."""
    ext = _split(path)[1]
    if ext == SAFETENSORS_EXT:
        return "safetensors"
    if ext and current == "safetensors":
        return torch_format
    return current


def _split(path: str) -> tuple[str, str]:
    lower = path.lower()
    for ext in (SAFETENSORS_EXT, *TORCH_EXTS):
        if lower.endswith(ext):
            return path[: -len(ext)], ext
    return path, ""
