"""Saving an (edited) model: the one entry point the CLI and the UI call.

    result = save(mf, "out.pth", fmt="state_dict", freeze_plan=True)

Every format is written to a temp file beside the target and renamed over it only
when complete (tui.core.write.atomic), reading tensor bytes from the source by offset in
bounded memory (tui.core.write.stream) — so saving over the very file that is open works,
and a failure or an interrupt leaves the target as it was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tui import __version__
from tui.core import formats
from tui.core.composition import devices
from tui.core.errors import ModelFileError
from tui.core.human import count, plural, size
from tui.core.model import Counts, ModelFile
from tui.core.read.build import add_tensor
from tui.core.read.records import module_state
from tui.core.read.source import is_url
from tui.core.surgery import Surgery
from tui.core.write import full as write_full
from tui.core.write.atomic import AtomicFile, atomic_write, check_space, check_target
from tui.core.write.freeze_plan import is_plan, plan_path, write_plan
from tui.core.write.stream import Progress, Sources


@dataclass
class SaveResult:
    path: str
    format: str  # "full" | "state_dict" | "safetensors" | "checkpoint" (whole checkpoint)
    nbytes: int
    plan_path: str | None
    tensors: int  # tensors written (state_dict/safetensors: entries; full: unique tensors)
    notes: list[str] = field(default_factory=list)
    replaced_source: bool = False  # the open file itself was overwritten
    surgery: Surgery | None = None  # renames, drops, extract, cast applied


@dataclass
class _Job:
    label: str
    total: int
    tensors: int
    write: Callable[[AtomicFile, Sources, Progress], int]
    after: Callable[[], None] | None = None  # bookkeeping when the source itself was replaced


def _part_is_module(mf: ModelFile) -> bool:
    src = mf.source
    if src is None:
        return False
    if src.kind == "torchscript":
        return True
    return src.kind == "torch" and module_state(src.model_obj) is not None


def default_format(mf: ModelFile) -> str:
    """What to write when no format is asked for: the kind of thing that was opened."""
    if mf.format == "safetensors":
        return "safetensors"
    if mf.format == "state_dict" or (mf.format == "checkpoint" and not _part_is_module(mf)):
        return "state_dict"
    return "full"


def suggested_path(mf: ModelFile, fmt: str | None = None) -> str:
    """A free name beside the source: entire_model.pth → entire_model.frozen.pth."""
    fmt = fmt or default_format(mf)
    base = mf.path.rstrip(os.sep) or mf.path
    if is_url(base):  # a remote source: saved in the current folder, under its name
        base = os.path.join(os.getcwd(), base.rstrip("/").rsplit("/", 1)[-1] or "model")
    if base.endswith(".index.json"):
        base = base[: -len(".index.json")]
    folder, name = os.path.split(base)
    stem, ext = (name, "") if os.path.isdir(base) else os.path.splitext(name)
    if stem.endswith(".safetensors"):
        stem = stem[: -len(".safetensors")]
    stem = stem.removesuffix(".frozen")
    f = formats.get(fmt) or formats.FULL
    # A weights-only format gets its own extension; a full model keeps a torch one.
    if not f.keeps_architecture or ext not in (".pth", ".pt", ".bin", ".ckpt", ".tar"):
        ext = f.extension
    cand = os.path.join(folder, f"{stem}.frozen{ext}")
    n = 2
    while os.path.lexists(cand):
        cand = os.path.join(folder, f"{stem}.frozen-{n}{ext}")
        n += 1
    return cand


def describe_format(fmt: str) -> str:
    """One paragraph: what the format keeps and what it loses."""
    f = formats.get(fmt)
    return f.describe if f else f"unknown format {fmt!r}"


def carries_code(mf: ModelFile, fmt: str, whole_checkpoint: bool = False) -> bool:
    """Would this save copy the source's pickle (or TorchScript) as it is?"""
    return fmt == "full" or (whole_checkpoint and mf.format == "checkpoint")


def code_kept(mf: ModelFile) -> list[str]:
    """The calls a full-model save of this file would pass on (its danger findings)."""
    return [w.callable for w in mf.warnings if w.severity == "danger"]


def save(mf: ModelFile, out: str, fmt: str | None = None, *, freeze_plan: bool = False,
         force: bool = False, whole_checkpoint: bool = False, cpu: bool = False,
         keep_code: bool = False,
         progress: Callable[[int, int], None] | None = None,
         surgery: Surgery | None = None) -> SaveResult:
    """Write the model (with its current requires_grad and the Editor's `surgery`: renames,
    drops, extract, cast) to `out`; see the module doc. `keep_code`: write a full model of
    a suspicious file all the same.
    `cpu`: every storage is recorded as saved on the CPU (plain torch.load works anywhere)."""
    out = os.fspath(out)
    if mf.source is None or mf.root is None:
        raise ModelFileError(mf.path, "nothing to save: no model or state_dict in this file")
    if mf.source.stale:
        raise ModelFileError(mf.path, "the file was replaced by a save since it was opened: open it again")
    whole = whole_checkpoint and mf.format == "checkpoint"
    fmt = fmt or default_format(mf)
    if fmt not in formats.FORMAT_IDS:
        raise ModelFileError(out, f"unknown format {fmt!r} (full, state_dict or safetensors)")
    if whole and mf.source.kind == "dcp":
        raise ModelFileError(mf.path, "a DCP checkpoint can't be rewritten whole: save its model "
                             "part as state_dict or safetensors")
    danger = code_kept(mf)
    if danger and carries_code(mf, fmt, whole):
        names = ", ".join(dict.fromkeys(danger[:3])) + (", …" if len(set(danger)) > 3 else "")
        if mf.source.kind == "torchscript":  # saving it would mean torch.jit.load running it
            raise ModelFileError(mf.path, f"refused: TorchScript saving loads the archive with "
                                 f"torch, which would run {names}; save as state_dict or "
                                 "safetensors (no code)")
        if not keep_code:
            raise ModelFileError(mf.path, f"refused: the file would call {names} when loaded and a "
                                 f"{formats.label('checkpoint' if whole else fmt)} keeps that; save "
                                 "as state_dict or safetensors (no code), or keep it on purpose "
                                 "(--keep-code, or 'keep code' in the save dialog)")
    surgery = surgery if surgery is not None and not surgery.empty else None
    if whole and surgery is not None:
        raise ModelFileError(mf.path, "a whole checkpoint is written as stored: rename, drop, "
                             "extract and cast apply to the model part saved alone")
    job = _whole_checkpoint(mf, fmt, cpu) if whole else _job(mf, fmt, cpu, surgery)
    target = check_target(out, force)
    same = _same_file(target, mf.path)
    plan_target = plan_path(target) if freeze_plan else None
    if plan_target is not None:
        check_target(plan_target, force)
    check_space(target, job.total)
    notes: list[str] = []
    if mf.source.kind == "dcp" and not whole:
        from tui.core.write.dcp_out import left_out

        notes += [n for n in [left_out(mf)] if n]
    with Sources() as sources:
        if mf.source.torch is not None:
            write_full.check_unchanged(mf, sources)
        tracker = Progress(job.total, progress)
        with atomic_write(target, force) as af:
            nbytes = job.write(af, sources, tracker)
        tracker.finish()
    if same:
        if job.after is not None:
            job.after()
        else:
            mf.source.stale = True  # offsets now point into a different file
    key = (mf.model_key or "") if job.label == "checkpoint" else ""
    written_plan = None
    if plan_target is not None:
        try:
            written_plan = write_plan(mf, target, force=force, model_key=key)
        except ModelFileError as e:
            raise ModelFileError(e.path, f"{e.problem} (the weights were written to {target}; "
                                 "only the freeze plan is missing)") from None
    beside = plan_path(target)
    if written_plan is None and job.label in ("state_dict", "safetensors", "checkpoint") \
            and os.path.isfile(beside) and is_plan(beside):
        notes.append(f"an older freeze plan {os.path.basename(beside)} beside it will be applied "
                     "when it is opened")
    return SaveResult(target, job.label, nbytes, written_plan, job.tensors, notes, same, surgery)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _job(mf: ModelFile, fmt: str, cpu: bool = False, surgery: Surgery | None = None) -> _Job:
    if fmt == "full":
        return _full(mf, cpu, surgery)
    from tui.core.write import safetensors as write_safetensors
    from tui.core.write import state_dict as write_state_dict
    from tui.core.write import surgery_out
    from tui.core.write.tensors_out import collect

    if mf.source.kind == "dcp":
        from tui.core.write.dcp_out import dcp_tensors

        tensors = dcp_tensors(mf)
    else:
        tensors = collect(mf)
    tensors = surgery_out.apply(mf.path, tensors, surgery)
    if fmt == "state_dict":
        write_state_dict.check_dtypes(mf.path, tensors)
        meta = getattr(mf.source.model_obj, "_metadata", None) if mf.source.kind == "torch" else None
        meta = surgery_out.metadata(meta if isinstance(meta, dict) else None, surgery)
        return _Job("state_dict", write_state_dict.total_bytes(tensors), len(tensors),
                    lambda af, s, p: write_state_dict.write(af.fd, tensors, af.target, s, p, meta, cpu))
    kept, aliases = write_safetensors.plan(mf.path, tensors)
    meta = dict(mf.source.metadata) if mf.source.kind == "safetensors" else {}
    meta.update({"format": "pt", "source": os.path.basename(mf.path.rstrip(os.sep)),
                 "modeltree.version": __version__})
    if mf.model_key:
        meta["modeltree.source_key"] = mf.model_key
    if aliases:
        meta["modeltree.aliases"] = json.dumps(aliases, separators=(",", ":"))

    def write(af: AtomicFile, s: Sources, p: Progress) -> int:
        n = write_safetensors.write(af.fd, kept, meta, s, p)
        write_safetensors.validate(af.tmp, af.target, [t.name for t in kept])
        return n

    return _Job("safetensors", write_safetensors.total_bytes(kept), len(kept), write)


def _full(mf: ModelFile, cpu: bool = False, surgery: Surgery | None = None) -> _Job:
    src = mf.source
    if surgery is not None:
        from tui.core.write import full_surgery

        full_surgery.refuse_names(mf, surgery)
        if src.kind == "torchscript":
            raise ModelFileError(mf.path, "extract and cast of a TorchScript file are not "
                                 "supported: save it as state_dict or safetensors")
    if src.kind == "torchscript":
        return _Job("full", mf.file_size, len(mf.tensors), lambda af, s, p: write_full.torchscript(af, mf))
    if not _part_is_module(mf):
        what = {"safetensors": "a safetensors file"}.get(mf.format, "a state_dict")
        raise ModelFileError(mf.path, f"{what} has no architecture to write as a full model: "
                             "save it as state_dict or safetensors")
    patches = write_full.flag_patches(mf)
    if surgery is not None:
        sub, keys, casts = full_surgery.model_pickle(mf, patches, surgery)
        if cpu:
            from tui.core.write.relocate import to_cpu

            sub = to_cpu(sub)[0]
        return _Job("full", write_full.part_size(mf, sub, keys), len(keys),
                    lambda af, s, p: write_full.write_part(af, mf, sub, keys, s, p, casts))
    if not mf.model_key:
        return _whole_file(mf, patches, "full", cpu)
    sub, keys = write_full.model_part(mf, patches, cpu)
    return _Job("full", write_full.part_size(mf, sub, keys), len(mf.tensors),
                lambda af, s, p: write_full.write_part(af, mf, sub, keys, s, p))


def _whole_checkpoint(mf: ModelFile, fmt: str, cpu: bool = False) -> _Job:
    natural = "full" if _part_is_module(mf) else "state_dict"
    if fmt != natural:
        kind = "a module" if natural == "full" else "a state_dict"
        raise ModelFileError(mf.path, f"a whole checkpoint keeps its model part as stored ({kind}): "
                             f"use format {natural}, or save the model part alone as {fmt}")
    return _whole_file(mf, write_full.flag_patches(mf), "checkpoint", cpu)


def _whole_file(mf: ModelFile, patches: list[tuple[int, int]], label: str, cpu: bool = False) -> _Job:
    if cpu and devices(mf).needs_map_location:
        # Locations change length: a new archive with the same entries, not a patched copy.
        sub, keys = write_full.whole_file_cpu(mf, patches)
        return _Job(label, write_full.part_size(mf, sub, keys), len(mf.tensors),
                    lambda af, s, p: write_full.write_part(af, mf, sub, keys, s, p))

    def after() -> None:
        # Same layout, new flag bytes: keep the open model consistent with the disk.
        src = mf.source.torch
        src.pickle_bytes = write_full.patched_pickle(mf, patches)
        for t in mf.tensors:
            if t.param_index >= 0:
                t.original_requires_grad = t.requires_grad

    return _Job(label, mf.file_size, len(mf.tensors),
                lambda af, s, p: write_full.whole_file(af, mf, patches, s, p), after)


def _written_counts(editor: Any) -> Counts:
    """The parameter counts of what is written: the model's, or after --extract/--drop only
    the parameters that still have a name in the output."""
    surgery = getattr(editor, "surgery", None)
    if surgery is None or not surgery.renames_names:
        return editor.mf.totals
    out = Counts()
    for t in editor.mf.parameters():
        if any(surgery.out_name(n) is not None for n in t.names):
            add_tensor(out, t, +1)
    return out


def summary(editor: Any, result: SaveResult, plan_hint: str = "add --freeze-plan") -> str:
    """One line: what changed, what was written, how big. `plan_hint`: how to ask for a
    freeze plan where the line is read (the CLI's flag, the dialog's checkbox)."""
    changed = editor.changed()
    froze = sum(1 for _, _, now in changed if now is False)
    unfroze = sum(1 for _, _, now in changed if now is True)
    c = _written_counts(editor)
    edits = (f"froze {froze:,}, unfroze {unfroze:,} tensor{'s' if froze + unfroze != 1 else ''}"
             if changed else "no requires_grad changes")
    known = c.trainable + c.frozen
    if not known:
        flags = "requires_grad unknown"
    elif c.unknown:
        flags = (f"{count(c.trainable)} trainable, {count(c.frozen)} frozen, {count(c.unknown)} "
                 f"unknown of {count(c.numel)} parameters")
    else:
        flags = f"{count(c.trainable)} of {count(c.numel)} parameters trainable"
    surgery = getattr(editor, "surgery", None)
    if surgery is not None and not surgery.empty:
        edits += "; " + ", ".join(surgery.describe())
    line = (f"{edits} ({flags}); wrote {result.path}: {formats.label(result.format)}, "
            f"{plural(result.tensors, 'tensor')}, {size(result.nbytes)}")
    if result.plan_path:
        line += f" + freeze plan {result.plan_path}"
    elif result.format in ("state_dict", "safetensors") and known:
        line += f"; requires_grad not kept ({plan_hint} to keep it)"
    for note in result.notes:
        line += f"; {note}"
    return line
