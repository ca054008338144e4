"""Reading model files structurally: nothing from the file runs, torch is never imported.

`reader.open_model(path)` is the entry point: it detects the container from content
(`containers`: torch zip and legacy, `legacy_tar`; `safetensors`; `torchscript`, read
without torch), unpickles every pickle torch.load would read into stand-ins (`loading`;
`guard` bounds the pickle first, `unpickle` + `records` + `kinds`), builds the module and
value trees (`build`) and lists what a plain torch.load would run (`scan`, by the
allowlist in `allow`).

May import: `tui.core.model`, `errors`, `formats`, `human`, and `write.freeze_plan`.
"""
