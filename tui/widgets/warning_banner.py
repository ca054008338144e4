"""Findings about the file: code a plain torch.load would run (prominent), and notes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.core.composition import devices
from tui.core.human import plural
from tui.core.model import ModelFile

MAX_LINES = 3


def banner_text(mf: ModelFile) -> Text | None:
    danger = [w for w in mf.warnings if w.severity == "danger"]
    # 'info' findings (packages torch.load would import, TorchScript code) are for --scan
    # and --print; the banner keeps to what needs attention.
    notes = [w for w in mf.warnings if w.severity == "unknown-class"]
    lines: list[Text] = []
    if danger:
        lines.append(Text(f"⚠ DANGER: torch.load on this file would run "
                          f"{plural(len(danger), 'call')}; modeltree ran none.", style="bold"))
        lines += [Text(f"  {w.callable}{' at ' + w.where if w.where else ''}: {w.detail}")
                  for w in danger[:MAX_LINES - 2]]
        lines.append(Text("  state_dict and safetensors carry no code; a full model needs 'keep code'."))
    elif notes:
        w = notes[0]
        more = f"  (+{len(notes) - 1:,} more)" if len(notes) > 1 else ""
        lines.append(Text(f"note: {w.callable}: {w.detail}{more}"))
    if (gpu := devices(mf).non_cpu):
        lines.append(Text(f"saved on {', '.join(gpu)}: without {'it' if len(gpu) == 1 else 'them'}, "
                          "torch.load needs map_location='cpu'; a copy saved with "
                          "'store every tensor as CPU' loads anywhere"))
    if len(mf.model_keys) > 1:
        lines.append(Text(f"models in this file: {', '.join(mf.model_keys)} "
                          f"(showing {mf.model_key}; for another, start modeltree with --key NAME)"))
    if mf.freeze_plan:
        lines.append(Text(f"requires_grad from the freeze plan {mf.freeze_plan}"))
    if not lines:
        return None
    return Text("\n").join(lines[:MAX_LINES + 1])


class WarningBanner(Static):
    """Hidden when there is nothing to say; red when the file would run code."""

    DEFAULT_CSS = """
    WarningBanner {
        display: none;
        height: auto;
        max-height: 3;
        text-overflow: ellipsis;
        padding: 0 1;
        background: $warning-muted;
        color: $text;
    }
    WarningBanner.-shown { display: block; }
    WarningBanner.-danger {
        height: auto;
        max-height: 4;
        text-wrap: wrap;
        background: $error;
        text-style: bold;
    }
    """

    def show(self, mf: ModelFile) -> None:
        text = banner_text(mf)
        self.set_class(text is not None, "-shown")
        self.set_class(any(w.severity == "danger" for w in mf.warnings), "-danger")
        self.update(text or "")
