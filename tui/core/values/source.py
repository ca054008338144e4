"""The tensors of an opened ModelFile as value views, and their statistics."""

from __future__ import annotations

from typing import Any

from tui.core.model import ModelFile, TensorInfo
from tui.core.read.locate import Locator
from tui.core.values import decode as dec
from tui.core.values.reader import CHUNK, ValueReader, View
from tui.core.values.stats import CancelFn, ProgressFn, Stats, compute, cost


class Unreadable(Exception):
    """A tensor with no values to read (meta, lazy) or a dtype that can't be decoded."""


class ModelValues:
    """Reads the values of a ModelFile's tensors; close() (or `with`) when done."""

    def __init__(self, mf: ModelFile, chunk_bytes: int = CHUNK, locator: Locator | None = None) -> None:
        self.mf = mf
        self.locator = locator or Locator(mf)
        self.reader = ValueReader(chunk_bytes)

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> ModelValues:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def view(self, t: TensorInfo) -> View:
        """Raises Unreadable, or ModelFileError when the file can't give the bytes."""
        why = readable(t)
        if why is None and getattr(self.mf.source, "kind", "") == "dcp":
            why = "values of DCP checkpoints aren't read here (save it as safetensors first)"
        if why is not None:
            raise Unreadable(why)
        st = self.locator.of_info(t)
        return View(st, t.dtype, tuple(t.shape), tuple(t.stride), t.storage_offset, t.name)

    def cost(self, t: TensorInfo, finite_only: bool = False) -> int:
        if readable(t) is not None:
            return 0
        try:
            v = View(None, t.dtype, tuple(t.shape), tuple(t.stride), t.storage_offset)  # type: ignore[arg-type]
            return cost(v, finite_only, self.reader.chunk_bytes)
        except (ValueError, ZeroDivisionError):
            return 0

    def stats(self, t: TensorInfo, *, finite_only: bool = False, progress: ProgressFn | None = None,
              cancel: CancelFn | None = None) -> Stats:
        return compute(self.reader, self.view(t), finite_only=finite_only, progress=progress,
                       cancel=cancel)


def readable(t: TensorInfo) -> str | None:
    """None when the tensor's values can be read, else why not."""
    if t.storage is None:
        return t.note or "no data in the file"
    if not dec.supported(t.dtype):
        return dec.why_not(t.dtype)
    return None



class ValueCache:
    """What the app keeps per opened file: one Locator, statistics per tensor uid, the
    last health check. Each thread reading values opens its own ModelValues."""

    def __init__(self, mf: ModelFile) -> None:
        self.mf = mf
        self._locator: Locator | None = None
        self.stats: dict[int, Stats] = {}
        self.health: Any = None  # tui.core.values.health.Health of the last complete scan

    def open(self, chunk_bytes: int = CHUNK) -> ModelValues:
        """Raises ModelFileError when the file's bytes can't be located."""
        if self._locator is None:
            self._locator = Locator(self.mf)
        return ModelValues(self.mf, chunk_bytes, locator=self._locator)
