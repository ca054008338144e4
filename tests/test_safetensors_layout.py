"""The streamed safetensors writer lays tensors out in the library's own order."""

from __future__ import annotations

import json
import struct

import pytest

torch = pytest.importorskip("torch")
st = pytest.importorskip("safetensors.torch")

from tui.core.read.reader import open_model  # noqa: E402
from tui.core.write.save import save  # noqa: E402


def _layout(path) -> list[tuple[int, str, str]]:
    raw = path.read_bytes()
    head = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    return sorted((v["data_offsets"][0], k, v["dtype"]) for k, v in head.items()
                  if k != "__metadata__")


def test_same_order_and_offsets_as_the_library(tmp_path):
    # Mixed dtypes of equal item size (I64/F64/U64, I32/F32, F16/BF16) tell
    # "by dtype" from "by item size" apart.
    sd = {"a": torch.randn(3, dtype=torch.float64), "b": torch.zeros(4, dtype=torch.int64),
          "c": torch.ones(2, dtype=torch.uint64), "d": torch.randn(5).half(),
          "e": torch.randn(2).bfloat16(), "f": torch.tensor([True, False]),
          "g": torch.randn(3, 3), "h": torch.arange(3, dtype=torch.int32),
          "i": torch.arange(4, dtype=torch.int16), "j": torch.arange(4, dtype=torch.uint8)}
    st.save_file(sd, str(tmp_path / "lib.safetensors"))
    torch.save(sd, tmp_path / "sd.pth")
    save(open_model(str(tmp_path / "sd.pth")), str(tmp_path / "ours.safetensors"),
         "safetensors")
    assert _layout(tmp_path / "ours.safetensors") == _layout(tmp_path / "lib.safetensors")
