"""`--print`: the module tree and a torchinfo-like footer, rich or plain."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from tui.core import formats, human
from tui.core.composition import devices
from tui.core.model import ModelFile, ModuleNode

STYLES = {"trainable": "green", "frozen": "cyan", "partial": "yellow", "unknown": "magenta",
          "empty": "dim"}


def node_label(node: ModuleNode) -> Text:
    """`● (fc): Linear(in_features=576, out_features=10, bias=True)  5.8K  trainable`."""
    st = node.status
    t = Text()
    t.append(f"{human.glyph(st)} ", style=STYLES[st])
    if node.type is None:  # a file without architecture: names only
        t.append(node.key or "(root)", style="bold")
    else:
        if node.key:
            t.append(f"({node.key}): ", style="bold")
        t.append(node.short_type, style="blue")
        t.append(f"({human.one_line(node.extra_repr)})")
    t.append(f"  {human.count(node.counts.numel)}")
    t.append(f"  {st}", style=STYLES[st])
    return t


def print_model(mf: ModelFile, depth: int | None = None, console: Console | None = None) -> None:
    console = console or Console(highlight=False, soft_wrap=True)
    console.print(Text.assemble((mf.path, "bold"), f"  {formats.kind_label(mf.format)}",
                                f" ({mf.container})",
                                f"  model: {mf.model_key}" if mf.model_key else ""))
    if mf.model_keys and len(mf.model_keys) > 1:
        console.print(f"models in this file: {', '.join(mf.model_keys)} (choose with --key)")
    for w in mf.warnings:
        style = "bold red" if w.severity == "danger" else "yellow"
        prefix = "WARNING would run code" if w.severity == "danger" else "note"
        console.print(Text(f"{prefix}: {w.callable}: {w.detail}", style=style))
    device_line = devices(mf).line()
    if device_line:
        console.print(Text(f"note: {device_line}", style="yellow"))
    if not mf.requires_grad_stored:
        console.print(Text("requires_grad is not stored in this format (shown as ?)", style="magenta")
                      if not mf.freeze_plan else Text(f"requires_grad from freeze plan {mf.freeze_plan}"))
    if mf.root is None:
        console.print("no model in this file; its content:")
        _print_values(mf, console)
        return
    tree = Tree(node_label(mf.root))
    stack = [(mf.root, tree)]
    while stack:  # iterative: models can be hundreds of levels deep
        node, branch = stack.pop()
        if depth is not None and node.depth >= depth:
            if node.children:
                branch.add(Text(f"… {human.plural(len(node.children), 'child', 'children')}", style="dim"))
            continue
        pairs = [(c, branch.add(node_label(c))) for c in node.children]
        stack.extend(reversed(pairs))
    console.print(tree)
    c = mf.totals
    inferred = any(t.inferred for t in mf.tensors)
    lines = [f"Total params: {c.numel:,}"]
    if inferred or (mf.root.type is None and c.numel):
        lines[0] += ("  (no architecture in the file: parameters told from buffers by name and "
                     "dtype)")
    lines += [f"Trainable params: {c.trainable:,}", f"Non-trainable params: {c.frozen:,}"]
    if c.unknown:
        lines.append(f"Params with unknown requires_grad: {c.unknown:,}")
    lines.append(f"Params size: {human.size(c.nbytes)}   Buffers: {c.buffer_numel:,} "
                 f"({human.size(c.buffer_nbytes)}{', inferred' if inferred else ''})   "
                 f"File: {human.size(mf.file_size)}")
    console.print(Text("─" * min(console.width, 80), style="dim"))
    for line in lines:
        console.print(line)


def _print_values(mf: ModelFile, console: Console) -> None:
    tree = Tree(f"{mf.values.key}: {mf.values.summary}")
    stack = [(mf.values, tree, 0)]
    while stack:
        v, branch, d = stack.pop()
        if d >= 6:
            continue
        pairs = [(c, branch.add(f"{c.key}: {c.summary}"), d + 1) for c in v.children[:100]]
        stack.extend(reversed(pairs))
    console.print(tree)


def make_console() -> Console:
    """A terminal wraps long module lines; piped output keeps each module on one line."""
    if sys.stdout.isatty():
        return Console(highlight=False, file=sys.stdout)
    return Console(highlight=False, soft_wrap=True, file=sys.stdout, width=WIDE)


WIDE = 100_000  # piped --print: never cut a line (grep and diff read whole lines)
