"""Builders for the trust tests: a TorchScript archive whose __setstate__ writes a marker,
one file per tensor kind, and benign checkpoints a scanner must not flag."""

from __future__ import annotations

import argparse
import pathlib
from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor, nn


class SetStateNet(nn.Module):
    """torch.jit.load runs __setstate__: torch.from_file(path, shared=True) creates `path`."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))
        self.path = path
        self.n = 0

    def forward(self, x: Tensor) -> Tensor:
        return x * self.w

    @torch.jit.export
    def __getstate__(self) -> tuple[Tensor, str, bool, int]:
        return (self.w, self.path, self.training, self.n)

    @torch.jit.export
    def __setstate__(self, state: tuple[Tensor, str, bool, int]) -> None:
        self.w = state[0]
        self.path = state[1]
        self.training = state[2]
        self.n = torch.from_file(state[1], True, 1).numel()


def setstate_archive(path: Path, marker: Path) -> Path:
    torch.jit.save(torch.jit.script(SetStateNet(str(marker))), str(path))
    return path


def tensor_kinds() -> dict[str, Tensor]:
    eye = torch.eye(4)
    return {
        "sparse_coo": eye.to_sparse(), "sparse_csr": eye.to_sparse_csr(),
        "sparse_csc": eye.to_sparse_csc(), "sparse_bsr": eye.to_sparse_bsr((2, 2)),
        "sparse_bsc": eye.to_sparse_bsc((2, 2)),
        "nested": torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]),
        "quantized": torch.quantize_per_tensor(torch.randn(3), 0.1, 0, torch.qint8),
        "quantized_channel": torch.quantize_per_channel(
            torch.randn(2, 3), torch.tensor([0.1, 0.2]), torch.tensor([0, 1]), 0, torch.qint8),
        "meta": torch.empty(3, device="meta"),
    }


def kind_model(kind: str) -> nn.Module:
    m = nn.Linear(4, 4)
    m.register_buffer("extra", tensor_kinds()[kind])
    return m


def benign(d: Path) -> dict[str, Path]:
    """Checkpoints real training code writes: none of them calls anything but data."""
    import numpy as np

    lin = nn.Linear(3, 2)
    out = {
        "paths_namespace": {"model": lin.state_dict(), "out_dir": pathlib.PosixPath("/tmp/run"),
                            "args": argparse.Namespace(lr=0.1, name="x", dims=[1, 2])},
        "numpy": {"state_dict": lin.state_dict(), "arr": np.arange(6).reshape(2, 3),
                  "scalar": np.float32(1.5), "rng": np.random.default_rng(0).random(3)},
        "lightning_like": {"epoch": 3, "global_step": 10, "pytorch-lightning_version": "2.4.0",
                           "state_dict": lin.state_dict(), "loops": {"fit": {"x": 1}},
                           "callbacks": {}, "optimizer_states": [torch.optim.SGD(
                               lin.parameters(), lr=0.1).state_dict()],
                           "lr_schedulers": [], "hparams_name": "kwargs",
                           "hyper_parameters": OrderedDict(lr=0.1, act=torch.relu)},
        "misc": {"when": __import__("datetime").datetime(2024, 1, 2), "s": {1, 2},
                 "f": frozenset({3}), "c": complex(1, 2), "sl": slice(1, 4), "n": len,
                 "model": lin},
    }
    paths = {}
    for name, obj in out.items():
        paths[name] = d / f"{name}.pth"
        torch.save(obj, paths[name])
    import pickle

    # the peers' benign pickles: a list of strings at every protocol, numpy arrays
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        paths[f"benign_v{proto}"] = d / f"benign_v{proto}.pkl"
        paths[f"benign_v{proto}"].write_bytes(pickle.dumps(["a", "b", "c"], protocol=proto))
    arrays = {"object_array": np.array([(1, 2), (3, 4)], dtype=object),
              "int_array": np.array([(1, 2), (3, 4)], dtype=int)}
    for name, arr in arrays.items():
        paths[name] = d / f"{name}.pkl"
        paths[name].write_bytes(pickle.dumps(arr, protocol=2))
    # builtins.len called on data (a false alarm of the old blocklist)
    paths["len_call"] = d / "len_call.pkl"
    paths["len_call"].write_bytes(b"\x80\x02}X\x01\x00\x00\x00ncbuiltins\nlen\nX\x03\x00\x00\x00abc"
                                  b"\x85Rs.")
    # a joblib-style wrapper: NEWOBJ + BUILD of a class, the raw array after the pickle
    wrapper = (b"\x80\x04\x8c\x13joblib.numpy_pickle\x8c\x11NumpyArrayWrapper\x93)\x81}"
               b"\x8c\x05shape\x4b\x03\x85sb.")
    paths["joblib_wrapper"] = d / "joblib_wrapper.pkl"
    paths["joblib_wrapper"].write_bytes(wrapper + np.arange(3).tobytes())
    return paths


class _Ref:
    def __init__(self, key: int) -> None:
        self.key = key


def legacy_tar_state_dict(path: Path) -> dict[str, Tensor]:
    """A state_dict in torch's oldest (tar) layout, written by hand: torch.load reads it."""
    import io
    import pickle
    import struct
    import tarfile

    torch.manual_seed(0)
    sd = OrderedDict(weight=torch.randn(2, 3), bias=torch.randn(2), steps=torch.arange(4))
    st, ts = io.BytesIO(), io.BytesIO()
    st.write(pickle.dumps(len(sd), 2))
    ts.write(pickle.dumps(len(sd), 2))
    for key, t in enumerate(sd.values()):
        stype = torch.LongStorage if t.dtype == torch.int64 else torch.FloatStorage
        st.write(pickle.dumps((key, "cpu", stype), 2))
        st.write(struct.pack("<q", t.numel()) + t.numpy().tobytes())
        ts.write(pickle.dumps((100 + key, key, torch.FloatTensor), 2))
        ts.write(struct.pack("<i", t.dim()) + b"\0" * 4 + struct.pack(f"<{t.dim()}q", *t.shape)
                 + struct.pack(f"<{t.dim()}q", *t.stride()) + struct.pack("<q", 0))
    st.write(pickle.dumps([], 2))

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return str(obj.key) if isinstance(obj, _Ref) else None

    main = io.BytesIO()
    P(main, 2).dump(OrderedDict((k, _Ref(100 + i)) for i, k in enumerate(sd)))
    with tarfile.open(path, "w:", format=tarfile.PAX_FORMAT) as tar:
        for name, blob in (("sys_info", pickle.dumps({}, 2)), ("storages", st.getvalue()),
                           ("tensors", ts.getvalue()), ("pickle", main.getvalue())):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return sd
