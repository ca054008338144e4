"""The save formats, once: the CLI's choices, the writers, the dialog, help and printing
all read this registry (pure data, no imports from the rest of the core).

    for f in SAVE_FORMATS: f.id, f.label, f.extension, f.keeps_requires_grad, f.describe
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    id: str  # what --format takes and SaveResult.format says
    label: str  # how the UI and messages name it
    extension: str  # suggested file extension
    keeps_requires_grad: bool
    keeps_architecture: bool  # the module classes (needs their code to load)
    describe: str  # one paragraph: what it keeps and what it loses


FULL = Format(
    "full", "full model", ".pth", keeps_requires_grad=True, keeps_architecture=True,
    describe="Full model, as torch.save(model): keeps the architecture (references to the "
             "model's classes), every tensor, requires_grad, tied weights and any other "
             "attributes. modeltree writes the original pickle back with only the changed "
             "requires_grad flags, so it loads into the same classes — but loading needs "
             "those classes' code and torch.load(weights_only=False), which runs code named "
             "in the file.",
)
STATE_DICT = Format(
    "state_dict", "state_dict", ".pth", keeps_requires_grad=False, keeps_architecture=False,
    describe="state_dict, as torch.save(model.state_dict()): the weights and persistent "
             "buffers by name, tied weights sharing one storage; loads safely with "
             "torch.load(weights_only=True). Loses requires_grad (every tensor is "
             "plain) and the architecture: you need the model's code and "
             "load_state_dict(). Add the freeze plan to keep the flags in a JSON beside it.",
)
SAFETENSORS = Format(
    "safetensors", "safetensors", ".safetensors", keeps_requires_grad=False,
    keeps_architecture=False,
    describe="safetensors: the weights by name in a simple format that can't run code "
             "and maps straight into memory. Loses requires_grad, the architecture and "
             "tied-weight sharing (a tied tensor is stored once; its other names are "
             "listed in the metadata). Add the freeze plan to keep the flags beside it.",
)
# Not a choice of its own: the "whole checkpoint" option rewrites the opened checkpoint.
CHECKPOINT = Format(
    "checkpoint", "whole checkpoint", ".pth", keeps_requires_grad=True, keeps_architecture=True,
    describe="Whole checkpoint: the file as it is (optimizer state, epoch, …) with only "
             "the model part's requires_grad changed.",
)

SAVE_FORMATS: tuple[Format, ...] = (FULL, STATE_DICT, SAFETENSORS)
FORMAT_IDS: tuple[str, ...] = tuple(f.id for f in SAVE_FORMATS)
_BY_ID = {f.id: f for f in (*SAVE_FORMATS, CHECKPOINT)}

# What an opened file is (ModelFile.format), as printed.
KIND_LABELS: dict[str, str] = {
    "full_model": "full model", "state_dict": "state_dict", "checkpoint": "checkpoint",
    "torchscript": "TorchScript", "safetensors": "safetensors", "value": "value",
}


def get(fmt_id: str) -> Format | None:
    return _BY_ID.get(fmt_id)


def label(fmt_id: str) -> str:
    f = _BY_ID.get(fmt_id)
    return f.label if f else fmt_id


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)
