"""Command line: headless --print/--json/--save, or the app."""

from __future__ import annotations

import argparse
import gc
import sys

from tui import __version__
from tui.core.errors import ModelFileError
from tui.core.formats import FORMAT_IDS
from tui.core.human import plural
from tui.core.surgery import CAST_DTYPES


class _Ordered(argparse.Action):
    """--freeze/--unfreeze keep their relative order in one list."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        ops = list(getattr(namespace, "ops", None) or [])
        ops.append((values, self.dest == "unfreeze"))
        namespace.ops = ops


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modeltree",
        description="Look inside a PyTorch model file without running it; freeze parts; save again.",
    )
    p.add_argument("file", nargs="?", help="model file (.pth/.pt/.bin/.ckpt/.safetensors), shard "
                   "directory, index.json, DCP folder, or a URL (http(s)://, s3://, hf://); "
                   "none: the app opens a file picker in the working folder")
    p.add_argument("--version", action="version", version=f"modeltree {__version__}")
    p.add_argument("--print", dest="print_", action="store_true", help="print the module tree and totals")
    p.add_argument("--depth", type=int, default=None, metavar="N", help="with --print: levels to show")
    p.add_argument("--json", action="store_true", help="print one JSON document describing the file")
    p.add_argument("--key", default=None, help="in a checkpoint, which model to show (e.g. model_state_dict)")
    p.add_argument("--scan", action="store_true",
                   help="only report what torch.load would run: exit 0 clean, 3 suspicious")
    p.add_argument("--freeze", action=_Ordered, metavar="GLOB", help="freeze matching parameters (repeatable)")
    p.add_argument("--unfreeze", action=_Ordered, metavar="GLOB", help="unfreeze matching parameters (repeatable)")
    p.add_argument("--save", metavar="OUT", help="write the (edited) model to OUT")
    p.add_argument("--format", choices=FORMAT_IDS, default=None, help="what --save writes")
    p.add_argument("--freeze-plan", action="store_true", help="with --save: also write OUT's .freeze.json")
    p.add_argument("--whole-checkpoint", action="store_true",
                   help="with --save on a checkpoint: write the whole checkpoint, model part replaced")
    p.add_argument("--force", action="store_true", help="with --save: overwrite an existing OUT")
    p.add_argument("--keep-code", action="store_true",
                   help="with --save: write a full model even if the file would run code when loaded")
    # Checkpoint surgery (issue 14): applied in the Editor, honoured by every writer.
    p.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                   help="rename by prefix (repeatable): module.= strips, =model. adds")
    p.add_argument("--drop", action="append", default=[], metavar="GLOB",
                   help="leave out matching tensors (a module name: its subtree; repeatable)")
    p.add_argument("--extract", metavar="PREFIX", help="save only this module, prefix removed")
    p.add_argument("--dtype", choices=CAST_DTYPES, help="cast floating tensors when saving")
    # Comparison (issue 14): modeltree A B [--diff [--json] [--values]].
    p.add_argument("other", nargs="?", help="a second file: compare the two (the app, or --diff)")
    p.add_argument("--diff", action="store_true", help="with two files: print the differences; "
                   "exit 0 same structure, 1 different, 2 trouble")
    p.add_argument("--values", action="store_true", help="with --diff: compare tensor values too")
    p.add_argument("--cpu", action="store_true",
                   help="with --save: store every tensor as on the CPU (plain torch.load works without a GPU)")
    p.add_argument("--clear-cache", action="store_true",
                   help="delete the cache of byte ranges fetched from URLs, then exit")
    p.add_argument("--stats", nargs="*", metavar="GLOB", default=None,
                   help="statistics of the tensors' values (all, or those matching a GLOB); with --json: per tensor")
    p.add_argument("--check-finite", action="store_true",
                   help="list tensors holding NaN or Inf: exit 4 if there is one, 0 otherwise")
    p.set_defaults(ops=[])
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.clear_cache:
        from tui.headless import remote

        return remote.clear_cache()
    if args.other is not None:
        from tui.headless.diff import main as diff_main

        if args.print_ or args.save or args.scan or args.ops or args.rename or args.drop \
                or args.extract or args.dtype:
            parser().error("with two files only --diff, --json, --values and --key apply")
        if args.diff or args.json:
            return diff_main(args)
        from tui.core.read.probe import probe
        from tui.diff_app import run_diff_app

        try:  # as for one file: a path that can't be a model fails here, in one line
            probe(args.file)
            probe(args.other)
        except ModelFileError as e:
            print(f"modeltree: {e}", file=sys.stderr)
            return 2

        return run_diff_app(args.file, args.other, key=args.key)
    if args.diff or args.values:
        parser().error("--diff/--values need two files: modeltree A B --diff")
    if args.depth is not None and args.depth < 0:
        parser().error("--depth must be 0 or more")
    surgery = args.rename or args.drop or args.extract or args.dtype
    if (args.ops or surgery or args.format or args.freeze_plan or args.force or args.cpu
            or args.keep_code) and not args.save and not args.json and not args.print_:
        parser().error("--freeze/--unfreeze/--format need --save (or --print/--json to preview)")
    values = args.stats is not None or args.check_finite
    if values and (args.save or args.ops or args.print_ or args.scan):
        parser().error("--stats/--check-finite go alone (or with --json)")
    if args.save:
        from tui.core.write.targets import target_format

        args.format, problem = target_format(args.save, args.format)
        if problem:
            parser().error(problem)
    headless = args.print_ or args.json or args.save or args.scan or values
    if not headless and not sys.stdout.isatty():
        args.print_ = headless = True  # piped or redirected: print what --print prints
    if args.file is None:  # no file: the app's file picker in the working folder
        if headless or args.other is not None or not sys.stdin.isatty():
            parser().error("a file is required (without one, the app opens a file picker)")
        from tui.app import run_app

        return run_app(None, key=args.key)
    if not headless:
        if not sys.stdin.isatty():
            print("modeltree: the app needs a terminal (stdin is not one); use --print, --json "
                  "or --scan, or ssh -t", file=sys.stderr)
            return 2
        from tui.core.read.probe import probe

        try:  # a path that can't be a model: one line here, not a full-screen error box
            probe(args.file)
        except ModelFileError as e:
            print(f"modeltree: {e}", file=sys.stderr)
            return 1
        from tui.app import run_app

        return run_app(args.file, key=args.key)
    try:
        from tui.headless.remote import show_progress

        show_progress(args.file)
        return _headless(args)
    except ModelFileError as e:
        print(f"modeltree: {e}", file=sys.stderr)
        seen = [f for f in getattr(e, "findings", ()) if f.severity == "danger"]
        if args.scan and seen:  # suspicious before the broken part: 3 wins over 1
            for f in seen:
                print(f.line())
            print(f"{args.file}: SUSPICIOUS: torch.load would import or call {len(seen)} thing(s) "
                  "before the point where the file breaks")
            return 3
        return 1
    except KeyboardInterrupt:
        print("modeltree: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def _headless(args: argparse.Namespace) -> int:
    from tui.core.read.reader import open_model

    mf = open_model(args.file, key=args.key)
    # The model lives until exit: keep the cyclic GC from rescanning its ~100 objects
    # per tensor again and again (a third of a 10k-tensor --json run).
    gc.freeze()
    if args.scan:
        return _scan(mf)
    if args.stats is not None or args.check_finite:
        from tui.headless.stats import run

        return run(mf, args.stats, args.check_finite, args.json)
    editor = None
    if args.ops or args.save or args.rename or args.drop or args.extract or args.dtype:
        from tui.core.edit import Editor  # only edits and saves need it (~10 ms on 10k tensors)

        editor = Editor(mf)
        for pattern, value in args.ops:
            if not editor.matching(pattern):
                raise ModelFileError(args.file, f"pattern {pattern!r} matches no parameter")
            editor.apply_pattern(pattern, value)
        _surgery(editor, args)
    if args.json:
        from tui.core.report import to_json, write_json

        doc = to_json(mf, encoded=True)  # items as JSON text: no per-tensor dict
        if editor is not None and not editor.surgery.empty:  # --rename/--drop/--extract/--dtype
            from tui.core.surgery import preview

            doc["surgery"] = preview(editor.surgery, editor.names())
        write_json(doc, sys.stdout)
    if args.print_:
        from tui.printing import make_console, print_model

        print_model(mf, depth=args.depth, console=make_console())
    if args.save:
        from tui.core.write.save import save, summary

        result = save(mf, args.save, fmt=args.format, freeze_plan=args.freeze_plan,
                      force=args.force, whole_checkpoint=args.whole_checkpoint, cpu=args.cpu,
                      surgery=editor.surgery, keep_code=args.keep_code)
        print(summary(editor, result), file=sys.stderr if args.json else sys.stdout)
    return 0


def _surgery(editor, args: argparse.Namespace) -> None:
    """--drop, --extract, --rename, --dtype into the Editor (one line on a bad one)."""
    from tui.core.surgery import SurgeryError, parse_rename

    try:
        for pattern in args.drop:
            editor.drop(pattern)
        if args.extract:
            editor.extract(args.extract)
        for spec in args.rename:
            editor.rename(*parse_rename(spec))
        if args.dtype:
            editor.cast(args.dtype)
    except SurgeryError as e:
        raise ModelFileError(args.file, str(e)) from None


def _scan(mf) -> int:
    danger = [w for w in mf.warnings if w.severity == "danger"]
    for w in mf.warnings:
        print(w.line())
    if danger:
        print(f"{mf.path}: SUSPICIOUS: torch.load(weights_only=False) would call "
              f"{plural(len(danger), 'thing')} named in the file")
        return 3
    print(f"{mf.path}: clean: torch.load would call nothing but data constructors")
    return 0
