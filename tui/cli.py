"""Command line: headless --print/--json/--save, or the app."""

from __future__ import annotations

import argparse
import gc
import sys
from typing import TextIO

from tui import __version__
from tui.core.errors import ModelFileError
from tui.core.formats import FORMAT_IDS
from tui.core.human import plural


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
                   "directory, index.json, DCP folder, or a URL (http(s)://, s3://, hf://)")
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
    p.add_argument("--cpu", action="store_true",
                   help="with --save: store every tensor as on the CPU (plain torch.load works without a GPU)")
    p.add_argument("--clear-cache", action="store_true",
                   help="delete the cache of byte ranges fetched from URLs, then exit")
    p.set_defaults(ops=[])
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.clear_cache or args.file is None:
        from tui.headless import remote

        return remote.clear_cache() if args.clear_cache else parser().error("a file is required")
    if args.depth is not None and args.depth < 0:
        parser().error("--depth must be 0 or more")
    if (args.ops or args.format or args.freeze_plan or args.force or args.cpu) and not args.save and not args.json and not args.print_:
        parser().error("--freeze/--unfreeze/--format need --save (or --print/--json to preview)")
    headless = args.print_ or args.json or args.save or args.scan
    if not headless:
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
    editor = None
    if args.ops or args.save:  # only edits and saves need it (its indexes cost ~10 ms on 10k tensors)
        from tui.core.edit import Editor

        editor = Editor(mf)
    for pattern, value in args.ops:
        if not editor.matching(pattern):
            raise ModelFileError(args.file, f"pattern {pattern!r} matches no parameter")
        editor.apply_pattern(pattern, value)
    if args.json:
        from tui.core.report import to_json

        write_json(to_json(mf), sys.stdout)
    if args.print_:
        from tui.printing import make_console, print_model

        print_model(mf, depth=args.depth, console=make_console())
    if args.save:
        from tui.core.write.save import save, summary

        result = save(mf, args.save, fmt=args.format, freeze_plan=args.freeze_plan,
                      force=args.force, whole_checkpoint=args.whole_checkpoint, cpu=args.cpu)
        print(summary(editor, result), file=sys.stderr if args.json else sys.stdout)
    return 0


def _line_encoder():
    """json.dumps without its per-call set-up (it builds a C encoder each call: a third of
    the cost of 15,000 one-line items). Same output as json.dumps with default settings."""
    import json  # only --json needs it (the app starts without it)

    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.dumps
    enc = json.JSONEncoder()
    c = make({}, enc.default, json.encoder.encode_basestring_ascii, None, ": ", ", ",
             False, False, True)
    return lambda obj: "".join(c(obj, 0))


def write_json(doc: dict, out: TextIO) -> None:
    """One top-level key per line, lists one item per line. Each line goes through the
    C encoder; json.dump(indent=...) would use the pure-Python one (5x slower on 10k tensors)."""
    import json

    out.write("{\n")
    last = len(doc) - 1
    line = _line_encoder()
    for i, (k, v) in enumerate(doc.items()):
        end = ",\n" if i < last else "\n"
        if isinstance(v, list) and v:
            out.write(f" {json.dumps(k)}: [\n  ")
            out.write(",\n  ".join(map(line, v)))
            out.write(f"\n ]{end}")
        else:
            out.write(f" {json.dumps(k)}: {json.dumps(v)}{end}")
    out.write("}\n")


def _scan(mf) -> int:
    danger = [w for w in mf.warnings if w.severity == "danger"]
    for w in mf.warnings:
        print(w.line())
    if danger:
        print(f"{mf.path}: SUSPICIOUS: torch.load(weights_only=False) would call "
              f"{plural(len(danger), 'thing')} named in the file")
        return 3
    print(f"{mf.path}: clean: nothing in the file would run code")
    return 0
