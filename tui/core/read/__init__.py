"""Reading model files structurally: nothing from the file runs, torch is never imported.

`reader.open_model(path)` is the entry point: it detects the container from content
(`containers`: torch zip and legacy; `safetensors`; `torchscript`), unpickles into
stand-ins (`guard` bounds the pickle first, `unpickle` + `records`), builds the module
and value trees (`build`) and lists what a plain torch.load would run (`scan`).

May import: `tui.core.model`, `errors`, `formats`, `human`, and `write.freeze_plan`.
"""
