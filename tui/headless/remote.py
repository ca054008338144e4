"""Remote files on the command line: --clear-cache, and progress on stderr while fetching."""

from __future__ import annotations

import sys

from tui.core.read.source import is_url


def clear_cache() -> int:
    """Delete the cache of fetched ranges; prints what was freed."""
    from tui.core.human import size
    from tui.core.read.remote import cache_dir, clear_cache

    freed = clear_cache()
    print(f"modeltree: cleared {cache_dir()} ({size(freed)})", file=sys.stderr)
    return 0


def show_progress(path: str | None) -> None:
    """For a URL: report on stderr once fetching has taken more than a second."""
    if path and is_url(path):
        from tui.core.read.remote import StderrProgress, set_progress

        set_progress(StderrProgress(sys.stderr))
