"""What the save dialog says: what each choice keeps and drops, in a user's words, and
the choices it remembers while the app runs. Messages name the dialog's controls
(the CLI's flags are the CLI's business)."""

from __future__ import annotations

from dataclasses import dataclass

from tui.core import formats
from tui.core.model import ModelFile

PLAN_BOX = "also write the freeze plan"  # the checkbox labels, as messages quote them
CPU_BOX = "store every tensor as CPU"
WHOLE_BOX = "whole checkpoint"
TICK_PLAN = f"tick '{PLAN_BOX}'"


@dataclass
class SaveChoices:
    """The dialog's last choices for one opened file (None: not chosen yet, use the default)."""

    path: str | None = None
    path_auto: bool = True  # the path was the dialog's suggestion (it follows the format)
    fmt: str | None = None
    plan: bool | None = None  # None: follows the format and the edits
    cpu: bool = False
    whole: bool = False


# format id → (what it keeps, what it drops), in words a user reads at a glance.
KEEPS: dict[str, tuple[str, list[str]]] = {
    "full": ("the architecture, every weight and buffer, requires_grad, tied weights and "
             "other attributes (loading needs the model's classes and runs code from the file)",
             []),
    "state_dict": ("every weight and buffer by name, tied weights; loads safely "
                   "(torch.load(weights_only=True)) into a model built from your code",
                   ["requires_grad (every tensor loads trainable)", "the architecture"]),
    "safetensors": ("every weight by name, in a file that can't run code",
                    ["requires_grad", "the architecture", "tied-weight sharing (stored once)"]),
}


def explain(mf: ModelFile, fmt: str, plan: bool, whole: bool, gpu: list[str], cpu: bool) -> str:
    """What the chosen options keep and drop, as the dialog shows it."""
    f = formats.get(fmt)
    keeps, drops = KEEPS.get(fmt, (f.describe if f else fmt, []))
    kept, dropped = [keeps], list(drops)
    if plan and f is not None and not f.keeps_requires_grad:
        dropped = [d for d in dropped if not d.startswith("requires_grad")]
        kept.append("requires_grad in a JSON beside it (modeltree reads it back; help (?) "
                    "shows the Python that applies it)")
    if mf.format == "checkpoint":
        others = [c.key for c in mf.values.children if c.key != mf.model_key]
        named = ", ".join(others[:5]) + (" …" if len(others) > 5 else "")
        if whole:
            kept.append(f"the rest of the checkpoint ({named or 'nothing else'})")
        elif others:
            dropped.append(f"the checkpoint's other entries ({named}): tick '{WHOLE_BOX}' to keep them")
    if gpu:
        where = ", ".join(gpu)
        if cpu:
            kept.append(f"tensors marked as CPU instead of {where}: plain torch.load works anywhere")
        else:
            kept.append(f"tensors marked as on {where}: torch.load needs map_location='cpu' "
                        "on a machine without it")
    text = "Keeps " + "; ".join(kept) + "."
    if dropped:
        text += "\nDrops " + "; ".join(dropped) + "."
    return text


def lost_flags_warning(fmt: str, full_ok: bool) -> str:
    """After a save that left the freeze edits out of the file."""
    way = (f"save as 'full model' or {TICK_PLAN}" if full_ok else TICK_PLAN)
    return (f"{formats.label(fmt)} does not store requires_grad: your freeze edits are not in "
            f"that file. To keep them, {way}.")
