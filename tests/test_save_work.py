"""Saving copies tensor bytes without checksumming them again: a torch zip's central
directory already holds each storage's CRC-32, so only new bytes (the pickle, the small
records) are checksummed. Bounds the work (bytes CRC'd), not the time."""

from __future__ import annotations

import pytest
import torch
from save_support import edit_and_save
from torch import nn

from tui.core.write.stream import stats


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("savework")
    model = nn.Sequential(*(nn.Linear(64, 64) for _ in range(8)))  # ~130 KB of tensors
    torch.save(model, d / "full.pth")
    torch.save(model.state_dict(), d / "sd.pth")
    torch.save({"model": model, "epoch": 1}, d / "ckpt.pth")
    tensor_bytes = sum(p.numel() * 4 for p in model.parameters())
    return d, tensor_bytes


@pytest.mark.parametrize("src, fmt", [("sd.pth", "state_dict"), ("full.pth", "state_dict"),
                                      ("full.pth", "full"), ("ckpt.pth", "full")])
def test_saving_from_a_torch_zip_checksums_no_tensor_bytes(sources, tmp_path, src, fmt):
    d, tensor_bytes = sources
    before = dict(stats)
    edit_and_save(d / src, tmp_path / "out.pth", fmt, [("0.*", False)])
    copied = stats["copied_bytes"] - before["copied_bytes"]
    crc = stats["crc_bytes"] - before["crc_bytes"]
    assert copied >= tensor_bytes
    assert crc < tensor_bytes // 10, (crc, tensor_bytes)  # the pickle and small records only


def test_bytes_without_a_known_crc_are_checksummed_once(tmp_path):
    """A legacy (pre-zip) source has no CRCs: its storages are checksummed exactly once."""
    model = nn.Linear(256, 256)
    torch.save(model.state_dict(), tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    tensor_bytes = sum(p.numel() * 4 for p in model.parameters())
    before = dict(stats)
    edit_and_save(tmp_path / "legacy.pth", tmp_path / "out.pth", "state_dict", [])
    crc = stats["crc_bytes"] - before["crc_bytes"]
    assert tensor_bytes <= crc < tensor_bytes + (64 << 10)
