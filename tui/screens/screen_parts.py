"""What the main screen's action mixins may use of the screen they are mixed into.

`MainScreen` owns these (it sets them in `__init__`/`show_model`); the mixins in
`edit_actions`, `filter_actions`, `surgery_actions` and `main_actions` subclass this one
class instead of each declaring its own copy of the list.
"""

from __future__ import annotations

from typing import Any


class MainScreenParts:
    mf: Any  # the open ModelFile
    editor: Any  # its Editor
    mtree: Any  # the ModuleTree
    table: Any  # the ParamTable
    path: str
    filtering: bool
    filter_pattern: str
    _pane: str  # which side pane shows: "table" or "values"
    say: Any  # notify(text, …)
    _edited: Any  # report an applied edit (EditActions)
