"""Headless commands behind `modeltree FILE --flag`: one module per feature.

`tui/cli.py` parses arguments and dispatches here; each module prints with rich (plain
when piped) and returns the process exit code. May import `tui.core`; never textual.
"""
