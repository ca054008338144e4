"""Regenerate every sample file in ``sample_models/`` (seeded, deterministic content).

Run from anywhere::

    python sample_models/generate.py

The repository root is put on ``sys.path`` so that full-model pickles name their classes
``sample_models.models.ConvNet`` / ``sample_models.models.TinyTransformer``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from sample_models.models import (  # noqa: E402
    ConvNet,
    article_frozen_model,
    tiny_transformer,
)


def _checkpoint(model: ConvNet) -> dict:
    """The PyTorch-tutorial checkpoint layout, with Adam state after one training step."""
    torch.manual_seed(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(8, 1, 28, 28)
    y = torch.randint(0, 10, (8,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {
        "epoch": 5,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
        "loss": 0.25,
    }


def generate(out_dir: Path = HERE) -> list[Path]:
    """Write all samples into ``out_dir``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def target(name: str) -> Path:
        path = out_dir / name
        written.append(path)
        return path

    # 1. The article's full model (a frozen ConvNet, only fc.* trainable).
    model = article_frozen_model()
    torch.save(model, target("entire_model.pth"))

    # 2. Its state_dict only.
    torch.save(model.state_dict(), target("weights_only.pth"))

    # 3. A full TinyTransformer (tied embed/head weights, persistent + non-persistent buffers).
    transformer = tiny_transformer()
    torch.save(transformer, target("transformer.pth"))

    # 4. A tutorial-style training checkpoint (ConvNet, Adam after one step).
    ckpt_model = article_frozen_model()
    ckpt_model.train()
    torch.save(_checkpoint(ckpt_model), target("checkpoint.pth"))

    # 5. TorchScript of the (frozen) ConvNet; per-tensor requires_grad survives jit.save.
    scripted = torch.jit.script(article_frozen_model().eval())
    torch.jit.save(scripted, str(target("scripted.pt")))

    # 6. safetensors of the TinyTransformer. safetensors refuses aliased tensors, so drop the
    #    tied duplicate head.weight, as transformers' save_pretrained does. (We don't use
    #    safetensors.torch.save_model: it adds {"head.weight": "embed.weight"} to the metadata,
    #    and the order of a multi-key metadata map varies from run to run.)
    state = transformer.state_dict()
    assert state["head.weight"].data_ptr() == state["embed.weight"].data_ptr()
    del state["head.weight"]
    st_path = target("transformer.safetensors")
    save_file(state, str(st_path), metadata={"format": "pt"})
    st_path.chmod(0o644)  # the safetensors library creates its files with mode 0600

    return written


def main() -> None:
    # TorchScript writes a module's constants in set order, which follows str hashing:
    # pin the hash seed (re-executing once) so that scripted.pt is byte-identical per run.
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(
            sys.executable, [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:]], env
        )
    for path in generate():
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size:>9,} bytes")


if __name__ == "__main__":
    main()
