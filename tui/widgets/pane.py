"""The look the bordered panes share (module tree, value tree, parameter table, node pane)."""

from __future__ import annotations


def pane_css(name: str) -> str:
    """DEFAULT_CSS for a pane widget called `name`: a rounded border, lit when focused."""
    return f"""
    {name} {{
        border: round $panel-lighten-2;
        border-title-color: $text-muted;
        border-subtitle-color: $text-muted;
        scrollbar-size-vertical: 1;
    }}
    {name}:focus {{ border: round $primary; border-title-color: $text; }}
    """
