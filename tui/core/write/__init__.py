"""Writing a `ModelFile` back to disk, exactly and atomically.

`save.save(mf, out, fmt)` is the entry point. Each writer (`full`, `state_dict`,
`safetensors`) streams tensor bytes from the source (`stream`) through `tensors_out`
into a temp file beside the target (`atomic`); `zipwrite` lays out torch zips,
`pickle_slice` cuts a module out of a checkpoint's pickle, `freeze_plan` keeps
requires_grad beside weights-only files, `targets` keeps a target's extension and format
in step. A suspicious source is written as a full model only when asked (`keep_code`).

Also `dcp_out` (DCP chunks → global tensors), `relocate` (`--cpu`), `cast` and
`surgery_out` / `full_surgery` (rename, drop, extract, cast on save), `targets`.

May import: `tui.core.read` (records, containers, locate, sources), `tui.core.values`
(decoding for casts), `model`, `errors`, `formats`, `human`, `surgery`, `composition`;
torch only inside functions that write TorchScript.
"""
