"""Save targets: extension and format agree (used by the CLI and the save dialog)."""

from __future__ import annotations

import pytest

from tui.core.write.targets import format_for_path, target_format, with_extension


@pytest.mark.parametrize("out,fmt,want", [
    ("a.safetensors", None, ("safetensors", None)), ("a.SAFETENSORS", None, ("safetensors", None)),
    ("a.pth", None, (None, None)), ("a.safetensors", "safetensors", ("safetensors", None)),
    ("a.pth", "safetensors", ("safetensors", None)), ("a.bin", "full", ("full", None)),
])
def test_target_format(out, fmt, want):
    assert target_format(out, fmt) == want


@pytest.mark.parametrize("fmt", ["full", "state_dict"])
def test_contradicting_format_is_a_usage_error(fmt):
    chosen, problem = target_format("w.safetensors", fmt)
    assert chosen is None and "contradicts" in problem


@pytest.mark.parametrize("path,fmt,want", [
    ("m.frozen.pth", "safetensors", "m.frozen.safetensors"),
    ("m.frozen.safetensors", "state_dict", "m.frozen.pth"),
    ("m.frozen.safetensors", "safetensors", "m.frozen.safetensors"),
    ("m.ckpt", "full", "m.ckpt"), ("weights", "safetensors", "weights.safetensors"),
    ("dir.v2/model.pt", "safetensors", "dir.v2/model.safetensors"),
])
def test_with_extension(path, fmt, want):
    assert with_extension(path, fmt) == want


def test_format_for_path():
    assert format_for_path("x.safetensors", "full", "full") == "safetensors"
    assert format_for_path("x.pth", "state_dict", "full") == "state_dict"
    assert format_for_path("x.pth", "safetensors", "full") == "full"
    assert format_for_path("x", "safetensors", "full") == "safetensors"  # still typing
