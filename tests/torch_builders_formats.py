"""Builders of torch files in every container format: a ``__main__`` class, legacy, CUDA-saved,
training/Lightning checkpoints, TorchScript, safetensors, sharded checkpoints and plain values.

Tests helper, not a test file; import through the ``torch_models`` façade.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch_builders_base import Built, _dir, _save, _seeded, rewrite_storage_location

from sample_models.models import article_frozen_model

_MAIN_SCRIPT = """\
import json
import sys

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.head = nn.Linear(4, 2)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


if __name__ == "__main__":
    out, facts_out, helper_dir = sys.argv[1:4]
    torch.manual_seed(0)
    net = Net()
    net.conv.weight.requires_grad_(False)
    torch.save(net, out)
    sys.path.insert(0, helper_dir)
    import torch_models

    with open(facts_out, "w") as fh:
        json.dump(torch_models.expected_facts(net), fh)
"""


def build_main_class(target: Path) -> Built:
    """A model whose class is ``__main__.Net`` of another process: ``main_class.pth``.

    Runs a generated script with ``sys.executable`` in a subprocess. ``obj`` is ``None`` (the
    class can't be imported here); ``expected`` holds its :func:`expected_facts`, also written
    to ``main_class.expected.json``. Files: the .pth, the script and the JSON.
    """
    target = _dir(target)
    script = target / "main_class_script.py"
    script.write_text(_MAIN_SCRIPT)
    out = target / "main_class.pth"
    facts = target / "main_class.expected.json"
    subprocess.run(
        [sys.executable, str(script), str(out), str(facts), str(Path(__file__).resolve().parent)],
        check=True,
        capture_output=True,
        cwd=target,
    )
    expected = json.loads(facts.read_text())
    return Built(path=out, obj=None, files=(out, script, facts), expected=expected)


def build_legacy(target: Path, *, state_dict: bool = False) -> Built:
    """The article ConvNet (or its state_dict) in the legacy (< 1.6) non-zip format:
    ``legacy.pth`` / ``legacy_state_dict.pth``. ``obj`` is what was saved."""
    with _seeded():
        model = article_frozen_model()
    obj: Any = model.state_dict() if state_dict else model
    name = "legacy_state_dict.pth" if state_dict else "legacy.pth"
    return _save(obj, _dir(target) / name, _use_new_zipfile_serialization=False)


def build_cuda_saved(target: Path, *, legacy: bool = False, state_dict: bool = False) -> Built:
    """The article ConvNet (or its state_dict) as if saved on ``cuda:0``: ``cuda_saved.pth``
    (``cuda_saved_legacy.pth`` with ``legacy=True``; ``_state_dict`` added if ``state_dict``).

    Saved on CPU, then every storage location is rewritten ``'cpu'`` -> ``'cuda:0'`` in the
    object pickle (:func:`rewrite_storage_location`). On a CPU-only machine
    ``torch.load(p, map_location='cpu', weights_only=False)`` works and ``torch.load(p)`` fails
    with "Attempting to deserialize object on a CUDA device …". ``obj`` is the CPU object.
    """
    with _seeded():
        model = article_frozen_model()
    obj: Any = model.state_dict() if state_dict else model
    name = "cuda_saved" + ("_legacy" if legacy else "") + ("_state_dict" if state_dict else "")
    built = _save(obj, _dir(target) / f"{name}.pth", _use_new_zipfile_serialization=not legacy)
    count = rewrite_storage_location(built.path, "cpu", "cuda:0")
    assert count > 0, "no storage location rewritten"
    return built


# --------------------------------------------------------------------------------------------
# builders: checkpoints and containers


def _adam_after_one_step(model: nn.Module, inputs: torch.Tensor) -> torch.optim.Adam:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    out = model(inputs)
    loss = out.float().pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return optimizer


def build_training_checkpoint(target: Path) -> Built:
    """Tutorial layout: ``checkpoint.pth`` = ``{'epoch': 5, 'model_state_dict',
    'optimizer_state_dict' (Adam after one step, state only for trainable fc.*), 'loss': 0.25}``.
    ``obj`` is the dict."""
    with _seeded():
        model = article_frozen_model().train()
        optimizer = _adam_after_one_step(model, torch.randn(4, 1, 28, 28))
        obj = {
            "epoch": 5,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "loss": 0.25,
        }
    return _save(obj, _dir(target) / "checkpoint.pth")


def build_model_in_dict(target: Path) -> Built:
    """``{'model': <full article ConvNet>, 'epoch': 3}``: ``model_in_dict.pth``."""
    with _seeded():
        obj = {"model": article_frozen_model(), "epoch": 3}
    return _save(obj, _dir(target) / "model_in_dict.pth")


def build_lightning_ckpt(target: Path) -> Built:
    """A PyTorch-Lightning-like checkpoint: ``lightning.ckpt``.

    Keys: ``epoch``, ``global_step``, ``pytorch-lightning_version``, ``state_dict`` (the
    article ConvNet's, keys prefixed ``model.``), ``loops``, ``callbacks``,
    ``optimizer_states`` (one Adam), ``lr_schedulers`` (one StepLR), ``hparams_name``,
    ``hyper_parameters`` (a plain dict).
    """
    with _seeded():
        model = article_frozen_model().train()
        optimizer = _adam_after_one_step(model, torch.randn(4, 1, 28, 28))
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
        state = OrderedDict((f"model.{k}", v) for k, v in model.state_dict().items())
    obj = {
        "epoch": 2,
        "global_step": 300,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": state,
        "loops": {
            "fit_loop": {
                "state_dict": {},
                "epoch_loop.state_dict": {"_batches_that_stepped": 300},
                "epoch_progress": {
                    "total": {"ready": 3, "started": 3, "processed": 3, "completed": 2},
                    "current": {"ready": 3, "started": 3, "processed": 3, "completed": 2},
                },
            },
            "validate_loop": {"state_dict": {}},
        },
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, "
            "'every_n_epochs': 1, 'train_time_interval': None}": {
                "monitor": "val_loss",
                "best_model_score": torch.tensor(0.25),
                "best_model_path": "/tmp/ckpts/epoch=1-step=200.ckpt",
                "current_score": torch.tensor(0.3),
                "dirpath": "/tmp/ckpts",
                "best_k_models": {},
                "kth_best_model_path": "",
                "kth_value": torch.tensor(float("inf")),
                "last_model_path": "",
            }
        },
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [scheduler.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": {"lr": 1e-3, "batch_size": 64, "num_classes": 10, "arch": "ConvNet"},
    }
    return _save(obj, _dir(target) / "lightning.ckpt")


def build_torchscript(target: Path) -> Built:
    """``torch.jit.script`` of the article's frozen ConvNet, ``torch.jit.save``-d:
    ``scripted.pt`` (has ``constants.pkl`` and ``code/``). ``obj`` is the ScriptModule."""
    with _seeded():
        scripted = torch.jit.script(article_frozen_model().eval())
    path = _dir(target) / "scripted.pt"
    torch.jit.save(scripted, str(path))
    return Built(path=path, obj=scripted, files=(path,))


def build_safetensors(target: Path) -> Built:
    """The article ConvNet's state_dict as ``model.safetensors`` with metadata
    ``{"format": "pt"}``. ``obj`` is the state_dict."""
    from safetensors.torch import save_file

    with _seeded():
        state = article_frozen_model().state_dict()
    path = _dir(target) / "model.safetensors"
    save_file(state, str(path), metadata={"format": "pt"})
    return Built(path=path, obj=state, files=(path,))


def _split_keys(keys: list[str], n: int) -> list[list[str]]:
    size = -(-len(keys) // n)
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def _sharded(out: Path, n_shards: int, shard_name: str, index_name: str,
             save_shard: Callable[[dict[str, torch.Tensor], Path], None]) -> Built:
    """The article ConvNet's state_dict split into shards named by `shard_name`
    (formatted with i and n) plus a HF index: ``{"metadata": {"total_size": N},
    "weight_map": {name: shard}}``."""
    with _seeded():
        state = article_frozen_model().state_dict()
    out = _dir(out)
    groups = _split_keys(list(state), n_shards)
    weight_map: dict[str, str] = {}
    files: list[Path] = []
    for i, keys in enumerate(groups, start=1):
        shard = shard_name.format(i=i, n=len(groups))
        save_shard(OrderedDict((k, state[k]) for k in keys), out / shard)
        weight_map.update(dict.fromkeys(keys, shard))
        files.append(out / shard)
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = out / index_name
    index.write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    return Built(path=out, obj=state, files=(index, *files))


def build_sharded_safetensors(target: Path, *, n_shards: int = 3) -> Built:
    """A Hugging Face sharded safetensors checkpoint in ``target/sharded_safetensors/``:
    ``model-0000i-of-0000n.safetensors`` + ``model.safetensors.index.json``. ``path`` is the
    directory, ``obj`` the full state_dict (article ConvNet)."""
    from safetensors.torch import save_file

    return _sharded(Path(target) / "sharded_safetensors", n_shards,
                    "model-{i:05d}-of-{n:05d}.safetensors", "model.safetensors.index.json",
                    lambda part, path: save_file(dict(part), str(path), metadata={"format": "pt"}))


def build_sharded_torch(target: Path, *, n_shards: int = 2) -> Built:
    """A Hugging Face sharded torch checkpoint in ``target/sharded_torch/``:
    ``pytorch_model-0000i-of-0000n.bin`` (torch.save of state_dict pieces) +
    ``pytorch_model.bin.index.json``. ``path`` is the directory, ``obj`` the full state_dict."""
    return _sharded(Path(target) / "sharded_torch", n_shards,
                    "pytorch_model-{i:05d}-of-{n:05d}.bin", "pytorch_model.bin.index.json",
                    lambda part, path: torch.save(part, path))


def build_lone_tensor(target: Path) -> Built:
    """A single float32 tensor of shape (2, 3, 4): ``tensor.pt``."""
    with _seeded():
        t = torch.randn(2, 3, 4)
    return _save(t, _dir(target) / "tensor.pt")


def build_tensor_list(target: Path) -> Built:
    """A list of tensors: ``tensor_list.pt`` = [float32 (3,), int64 (2,2), fp16 (4,), a view
    of the first (slice [1:], same storage)]."""
    with _seeded():
        a = torch.randn(3)
        obj = [a, torch.arange(4).reshape(2, 2), torch.randn(4).half(), a[1:]]
    return _save(obj, _dir(target) / "tensor_list.pt")


def build_plain_dict(target: Path) -> Built:
    """A dict with no tensors: ``plain_dict.pt`` (str, int, float, bool, None, list, tuple,
    nested dict, bytes)."""
    obj = {
        "name": "run-7",
        "epoch": 3,
        "lr": 0.001,
        "done": False,
        "notes": None,
        "layers": [16, 32, 64],
        "shape": (1, 28, 28),
        "nested": {"a": 1, "b": [1.5, "x"]},
        "blob": b"\x00\x01",
    }
    return _save(obj, _dir(target) / "plain_dict.pt")
