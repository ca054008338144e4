"""What a save writes when the command line doesn't say: the target's extension decides."""

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
