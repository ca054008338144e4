"""A C-speed check that proves the common pickle safe without walking it op by op.

The full guard (guard.check_pickle) simulates every opcode in Python: ~0.15-0.2 s for
the 2 MB pickle of a 10,000-tensor model. Here the full guard walks only the start of
the pickle, until the first memo index >= 256 is stored (a few KB); the rest is proven
safe by one anchored regular expression (`re` runs in C) and a targeted search. When
the proof fails, `fast_check` says so and the caller runs the full guard, which then
also words the exact error.

What the regex part proves (what the C unpickler would do unguarded):
- no absurd length claim: only short strings are inlined in the regex; longer ones,
  and every other length-prefixed opcode, are checked here in Python as the guard does;
- no memo index beyond the pickle's own size (the C unpickler sizes its memo array by
  the largest index): LONG_BINPUT is only taken with an index in [256, 2**bits), 2**bits
  <= the pickle's length; and no index < 256 is stored again, so the entries the full
  guard sized keep their sizes;
- no costly hash: the C unpickler hashes dict keys and set members with no hook for us,
  and a tuple of shared tuples takes exponential time to hash (a deep one crashes it).
  Outside structures the regex recognises, no tuple opcode is taken, so a stack slot
  holds either no tuple or one the full guard sized (a memo entry < 256 or a slot left
  from the start, all within its key limits, else no proof). Inside a structure (a
  MARK ... TUPLE nested at most DEPTH deep, or a TUPLE1-3), the tuples made are
  consumed at once by REDUCE / BINPERSID / NEWOBJ, our Python hooks, which never return
  a tuple of the file's. A tuple stored in the memo (a PUT right after a tuple opcode)
  must never come back: a LONG_BINGET of such an index means no proof (both are
  searched for unanchored, a superset: a false match only costs the full guard).

Why a regex is sound here: the anchored match consumes whole opcodes from a known
opcode boundary, reading arguments exactly as the unpickler does (fixed sizes, newline
ends, short length-prefixed strings enumerated), so argument bytes are never taken for
opcodes. Repetitions are possessive and structures nest at most DEPTH deep, so a
failed attempt costs at most DEPTH times the bytes it looked at: linear, no blow-up.
"""

from __future__ import annotations

import re
from functools import lru_cache

from tui.core.read.guard import _DEPTH_MASK, MAX_KEY_DEPTH, MAX_KEY_NODES, check_pickle

DEPTH = 4  # tuple structures nested deeper than this fall back to the full guard
INLINE_STR = 96  # top-level BINUNICODE strings up to this length are matched by the regex
INNER_STR = 16  # the same inside tuple structures (storage keys, 'cpu', 'storage')
MAX_LONG_BYTES = 1024  # as the full guard: LONG4 beyond this is refused there
_LENGTH_PREFIXED = {0x58: 4, 0x54: 4, 0x42: 4, 0x8B: 4, 0x8D: 8, 0x8E: 8, 0x96: 8,
                    0x43: 1, 0x55: 1, 0x8C: 1}  # opcode -> width of its length field
_STOP = 0x2E

# What the scans did, for tests that bound the work (not the time).
stats = {"scans": 0, "fallbacks": 0, "regex_calls": 0, "prefix_bytes": 0}


def _strings(limit: int) -> bytes:
    """BINUNICODE with its 4-byte length, lengths 0..limit, as one alternation."""
    return b"X(?:" + b"|".join(re.escape(n.to_bytes(4, "little")) + b".{%d}" % n
                               for n in range(limit + 1)) + b")"


def _long1() -> bytes:
    return rb"\x8a(?:" + b"|".join(re.escape(bytes([n])) + b"." * n for n in range(9)) + b")"


def _put(bits: int) -> bytes:
    """LONG_BINPUT with an index in [256, 2**bits) (little-endian bytes); nothing else."""
    big = rb"r(?!.\x00\x00\x00)"
    if bits >= 24:
        return big + rb"...[\x00-" + re.escape(bytes([(1 << (bits - 24)) - 1])) + rb"]"
    if bits >= 16:
        return big + rb"..[\x00-" + re.escape(bytes([(1 << (bits - 16)) - 1])) + rb"]\x00"
    return big + rb".[\x00-" + re.escape(bytes([(1 << (bits - 8)) - 1])) + rb"]\x00\x00"


# Pushes of one value that is never a non-empty tuple (GETs: see _memo_ok), strings aside.
_LEAF = b"|".join([
    rb"h.", rb"j....", rb"K.", rb"M..", rb"J....", rb"G.{8}", rb"[N\x88\x89\)\]\}\x8f]", _long1(),
    rb"c[^\n]*\n[^\n]*\n", rb"[ILFSV][^\n]*\n", rb"\x82.", rb"\x83..", rb"\x84....",
])


@lru_cache(maxsize=8)
def _pattern(bits: int, fused: bool = True) -> re.Pattern[bytes]:
    put = b"(?:" + _put(bits) + b")"
    # Inside a tuple structure: leaves, tuple ops and the calls that consume tuples (none
    # can reach below the structure's MARK: the unpickler fences it), each followed by at
    # most one PUT: a second PUT would store a tuple where the memo check doesn't look.
    inner = _LEAF + b"|" + _strings(INNER_STR) + rb"|[\x85\x86\x87RQ\x81]"
    group = rb"(?!)"  # depth 0: no nested structure
    for _ in range(DEPTH):
        group = rb"\((?>(?:" + inner + b"|" + group + b")" + put + rb"?)*+t"
    # Top level: no tuple opcode except in a structure whose tuple is consumed at once.
    # A MARK ... TUPLE is only tried right after a GET or GLOBAL (the callable it is the
    # arguments of): other MARKs (dicts, lists) are then not scanned twice.
    call = (rb"(?:h.|j....|c[^\n]*\n[^\n]*\n)" + put + rb"?(?:" + group + put + rb"?[RQ\x81])?")
    consumed = rb"[\x85\x86\x87]" + put + rb"?[RQ\x81]"
    # The other top-level opcodes, the most frequent first (alternatives are tried in order).
    single = rb"[R\)N\x88\x89\]\}\x8f(Q\x81usdaelob01\x90\x91\x93]"
    rest = (rb"M..|J....|G.{8}|" + _long1() + rb"|[ILFSV][^\n]*\n|\x82.|\x83..|\x84....|\x80.|"
            rb"\x95.{8}|P[^\n]*\n|i[^\n]*\n[^\n]*\n")
    # torch's most frequent runs fused into one alternative (a third of a state_dict's
    # opcodes are `OrderedDict()`: GET ) R PUT): the same tokens as above in sequence (a
    # GET not followed by MARK is a whole `call`), so the same pickles pass, with fewer
    # trips round the loop.
    runs = [rb"h.h.\)R" + put + b"?", rb"h.\)R" + put + b"?"] if fused else []
    top = [*runs, call, put, single, rb"K.", _strings(INLINE_STR), consumed, rest]
    return re.compile(rb"(?>" + b"|".join(top) + rb")*+", re.DOTALL)


MAX_HANDOVERS = 8  # places tried for the handover; then the full guard walks it all


def fast_check(data: bytes, start: int = 0) -> int | None:
    """The offset just past the pickle's STOP if it is proven safe, else None (then run
    the full guard). Raises GuardError when the full guard's walk of the start does."""
    stats["scans"] += 1
    n = len(data)
    bits = max(8, min(31, n.bit_length() - 1))
    run = _pattern(bits).match
    tries: list[tuple[int, int]] = []  # (handover offset, where the regex stopped)

    def handover(pos: int, stack: list, meta: list, memo: dict) -> bool:
        # Hand over where the full guard sized every slot and entry within the key
        # limits, and the regex takes what follows at least up to a long string or the
        # end (else we stopped inside a tuple structure: walk on to the next place).
        if len(tries) >= MAX_HANDOVERS:
            return False
        slots = [*stack, *(v for frame in meta for v in frame), *memo.values()]
        if any((v >> 12) > MAX_KEY_NODES or (v & _DEPTH_MASK) > MAX_KEY_DEPTH for v in slots):
            return False
        stats["regex_calls"] += 1
        end = run(data, pos).end()
        tries.append((pos, end))
        return end < n and (data[end] == _STOP or data[end] in _LENGTH_PREFIXED)

    end = check_pickle(data, start, prefix=handover)
    if end >= 0:
        stats["prefix_bytes"] += end - start
        return end  # the full guard walked it all
    scan_from, pos = tries[-1]
    stats["prefix_bytes"] += scan_from - start
    while True:
        if data[pos] == _STOP:
            return pos + 1 if _memo_ok(data, scan_from, pos, bits) else _fallback()
        skip = _skip_counted(data, pos)
        if skip is None:
            return _fallback()
        stats["regex_calls"] += 1
        pos = run(data, skip).end()
        if pos >= n:
            return _fallback()


def _skip_counted(data: bytes, pos: int) -> int | None:
    """Past a length-prefixed opcode at `pos` whose claim holds, else None."""
    code = data[pos]
    width = _LENGTH_PREFIXED.get(code)
    if width is None:
        return None
    head = pos + 1
    if head + width > len(data):
        return None
    size = int.from_bytes(data[head:head + width], "little", signed=code in (0x54, 0x8B))
    if size < 0 or (code == 0x8B and size > MAX_LONG_BYTES):
        return None
    end = head + width + size
    return end if end <= len(data) else None


def _fallback() -> None:
    stats["fallbacks"] += 1
    return None


_LONG_GET = re.compile(rb"j(?=(....))", re.DOTALL)
_TUPLE_OPS = (b"\x85r", b"\x86r", b"\x87r", b"tr")
_TUPLE_PUT = re.compile(rb"[\x85\x86\x87t]r(....)", re.DOTALL)


def _memo_ok(data: bytes, start: int, end: int, bits: int) -> bool:
    """No LONG_BINGET may fetch an entry stored right after a tuple opcode. Both are
    searched for unanchored (argument bytes may look alike): supersets of the real ones.
    Real indexes are below 2**bits (the regex took no other PUT), which rules out most
    look-alikes."""
    gets = {g for g in set(_LONG_GET.findall(data, start, end))
            if 256 <= int.from_bytes(g, "little") < 1 << bits}
    if not gets:
        return True
    if len(gets) <= 8:
        view = data[start:end]
        return not any(op + g in view for g in gets for op in _TUPLE_OPS)
    return not (gets & set(_TUPLE_PUT.findall(data, start, end)))
