"""Tensor values, read from the file's bytes with numpy: never torch, never textual.

- `decode`: torch dtype → how its bytes are stored (`raw_dtype`) and how to turn them into
  numbers (`decode`): bf16, fp16, the fp8 family and e8m0 by bit-level tables, complex,
  bool, integers, quantized tensors as their integers.
- `reader`: `View` (a tensor: its storage's bytes, dtype, shape, strides, offset) and
  `ValueReader`, which reads a view's elements in pieces of at most `chunk_bytes`
  (`pieces`, for statistics, any order) or as an array (`read`, small slices).
- `stats`: per-tensor statistics (`compute`), streamed.
- `source`: a ModelFile's tensors as views (`ModelValues`), and what the app keeps per
  file (`ValueCache`: one Locator, statistics per tensor, the last health check).
- `health`: every tensor scanned for NaN/Inf, and the modules holding them.
- `torchfmt`: numbers as torch prints them.

May import `tui.core.model`, `errors`, `human` and `tui.core.read` (to locate bytes).
"""
