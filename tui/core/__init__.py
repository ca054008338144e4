"""The pure model layer: no textual anywhere, and no torch on the read path.

- `model` (the dataclasses), `formats` (the save-format registry), `human` (numbers and
  marks as text), `errors`, `report` (--json): shared by everything; import nothing
  from the packages below.
- `read/`: from bytes on disk to a `ModelFile`, never running anything from the file.
- `edit`: freeze/unfreeze edits with undo/redo over a `ModelFile`.
- `write/`: from a (edited) `ModelFile` to a file on disk, atomically; the only place
  torch may be imported (TorchScript), and only when saving.

`read` never imports `write` at module level except `write.freeze_plan` (a plan beside a
weights file is applied on open); `write` imports `read` for records and containers.
"""
