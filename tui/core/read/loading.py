"""Unpickling one pickle of a file the restricted way, with errors a user can read.

A pickle that won't load still says what it names: the error carries `findings`, the
globals torch.load would have imported (and perhaps called) before the broken part.
"""

from __future__ import annotations

from tui.core.errors import ModelFileError
from tui.core.model import Finding
from tui.core.read.guard import GuardError
from tui.core.read.records import ReadResult
from tui.core.read.unpickle import load_pickle


def load(path: str, data: bytes) -> ReadResult:
    try:
        return load_or_raise(path, data)
    except ModelFileError as e:
        # What torch.load would have imported/called before the broken part: --scan says it
        # (what the restricted unpickler saw before the error, and the opcodes up to it).
        from tui.core.read import scan

        partial = getattr(e, "partial", None)
        seen = scan.findings(partial) if partial is not None else []
        named = {f.callable for f in seen}
        e.findings = seen + [f for f in scan.static_findings(data)  # type: ignore[attr-defined]
                             if f.callable not in named]
        raise


def load_or_raise(path: str, data: bytes) -> ReadResult:
    try:
        return load_pickle(data)
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError(path, "the pickle nests too deeply to read") from None
    except MemoryError:
        raise ModelFileError(path, "the pickle is too large to read") from None
    except GuardError as e:
        raise ModelFileError(path, f"refused to unpickle: {e}") from None
    except Exception as e:  # noqa: BLE001 - any failure of a hostile/broken pickle
        err = ModelFileError(path, f"not a readable pickle ({short(e)})")
        err.partial = getattr(e, "partial", None)  # type: ignore[attr-defined]
        raise err from None


def short(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    text = text[:120]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def broken(path: str, problem: str, reads: list[ReadResult],
           more: list[Finding] | None = None) -> ModelFileError:
    """A legacy file that breaks part way: keep what the pickles before the break would do."""
    from tui.core.read import scan

    e = ModelFileError(path, problem)
    e.findings = [f for r in reads for f in scan.findings(r)] + list(more or [])  # type: ignore[attr-defined]
    return e
