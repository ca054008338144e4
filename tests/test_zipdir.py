"""The zip central directory read without zipfile (tui/core/read/zipdir.py).

Regular archives: every field agrees with zipfile's. Irregular ones: read_dir declines and
the answer (data.pkl's bytes or the error text) is the one the zipfile-only code gave.
Work: opening a wide archive takes a handful of reads, and zipfile parses no directory.
"""

from __future__ import annotations

import builtins
import io
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tui.core.errors import ModelFileError
from tui.core.read import containers
from tui.core.read.bytesource import LocalSource, RangeFile
from tui.core.read.containers import listing, open_zip, read_zip
from tui.core.read.loading import short
from tui.core.read.zipdir import read_dir

ROOT = Path(__file__).resolve().parents[1]
PKL = pickle.dumps({"a": [1, 2]}, 2)
FIELDS = ("filename", "header_offset", "compress_type", "compress_size", "file_size", "CRC", "flag_bits")


# -- building archives ------------------------------------------------------------------------
def _zip(entries: list[tuple[str | zipfile.ZipInfo, bytes]] | None = None, comment: bytes = b"",
         method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries or [("archive/data.pkl", PKL), ("archive/version", b"3\n")]:
            z.writestr(name, data)
        z.comment = comment
    return buf.getvalue()


def _zip64(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A zip64 archive as zipfile writes one beyond 4 GB (its limits lowered for the test):
    0xFFFFFFFF sizes and offsets in the directory, the truth in zip64 extra fields, and
    the end record's fields saturated so only the zip64 end record is right."""
    with monkeypatch.context() as m:
        m.setattr(zipfile, "ZIP64_LIMIT", 64)
        m.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)
        data = bytearray(_zip([("archive/data.pkl", PKL + b"\0" * 100), ("archive/version", b"3\n"),
                               ("archive/data/0", bytes(range(200)))]))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HHLL", data, end + 8, 0xFFFF, 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF)
    return bytes(data)


def _at(data: bytes, sig: bytes, k: int = 0) -> int:
    i = -1
    for _ in range(k + 1):
        i = data.find(sig, i + 1)
    assert i >= 0
    return i


def _end(data: bytes) -> int:
    return data.rfind(b"PK\x05\x06")


def _edit(data: bytes, at: int, fmt: str, *values: object) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, *values)
    return bytes(out)


def _add(data: bytes, at: int, fmt: str, delta: int) -> bytes:
    return _edit(data, at, fmt, struct.unpack_from(fmt, data, at)[0] + delta)


def _write(tmp_path: Path, data: bytes, name: str = "m.pth") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# -- what zipfile says, and what we say ---------------------------------------------------------
def _zipfile_fields(p: Path) -> tuple[list[tuple], int]:
    with zipfile.ZipFile(p) as z:
        return [tuple(getattr(i, f) for f in FIELDS) for i in z.infolist()], z.start_dir


def _our_fields(p: Path) -> tuple[list[tuple], int]:
    with open(p, "rb") as f:
        d = read_dir(f)
    assert d is not None, "a regular archive was left to zipfile"
    return [tuple(e) for e in d.entries()], d.start_dir


def _zipfile_answer(p: Path) -> bytes | str:
    """What the zipfile-only code (before zipdir) answered: data.pkl's bytes or the error."""
    try:
        z = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        return f"broken zip archive ({e})"
    with z:
        info = [i for i in z.infolist() if i.filename == "archive/data.pkl"][0]
        try:
            return z.read(info)
        except Exception as e:  # noqa: BLE001 - the old code's net
            return f"can't read data.pkl ({short(e)})"


def _our_answer(p: Path) -> bytes | str:
    try:
        return open_zip(str(p)).pickle_bytes
    except ModelFileError as e:
        return e.problem


# -- regular archives: the same fields as zipfile ---------------------------------------------
@pytest.mark.parametrize("name", ["checkpoint.pth", "entire_model.pth", "transformer.pth",
                                  "weights_only.pth", "scripted.pt"])
def test_sample_models_agree_with_zipfile(name):
    p = ROOT / "sample_models" / name
    assert _our_fields(p) == _zipfile_fields(p)


def test_torch_save_agrees_and_opens_without_zipfile(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    p = tmp_path / "sd.pth"
    torch.save({f"w{i}": torch.full((3,), float(i)) for i in range(20)}, p)
    assert _our_fields(p) == _zipfile_fields(p)
    parsed = _spy_zipfile(monkeypatch)
    src = open_zip(str(p))
    assert parsed == [] and src.prefix == "sd/" and src.notes == []
    with zipfile.ZipFile(p) as z:
        assert src.pickle_bytes == z.read("sd/data.pkl")


def test_zip64_agrees_with_zipfile(tmp_path, monkeypatch):
    data = _zip64(monkeypatch)
    p = _write(tmp_path, data)
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data
    with zipfile.ZipFile(p) as z:
        assert sum(i.extra[:2] == b"\x01\x00" for i in z.infolist()) >= 2  # zip64 extra fields
    assert _our_fields(p) == _zipfile_fields(p)
    parsed = _spy_zipfile(monkeypatch)
    assert _our_answer(p) == PKL + b"\0" * 100 and parsed == []


def test_comment_duplicates_and_names_agree(tmp_path, monkeypatch):
    with pytest.warns(UserWarning, match="Duplicate name"):
        dup = _zip([("archive/data.pkl", PKL), ("archive/version", b"3\n"),
                    ("archive/data.pkl", pickle.dumps("other", 2))], comment=b"a comment")
    cp437 = _zip([("archive/data.pkl", PKL), ("archive/v_rsion", b"3\n")]).replace(
        b"archive/v_rsion", b"archive/v\x82rsion")  # no UTF-8 flag: cp437, as zipfile reads it
    utf8 = _zip([("archive/data.pkl", PKL), ("archive/vérsion", b"3\n"), ("archive/数据", b"x")])
    for name, data in (("dup", dup), ("cp437", cp437), ("utf8", utf8)):
        p = _write(tmp_path, data, name)
        assert _our_fields(p) == _zipfile_fields(p), name
    names = read_zip(str(tmp_path / "cp437")).names
    assert names[1] == "archive/vérsion"
    assert "archive/数据" in read_zip(str(tmp_path / "utf8")).names
    parsed = _spy_zipfile(monkeypatch)
    src = open_zip(str(tmp_path / "dup"))
    assert src.pickle_bytes == PKL and parsed == []  # torch reads the first
    assert [f.callable for f in src.notes] == ["duplicate zip entry archive/data.pkl"]


def test_listing_agrees_with_local_headers(tmp_path, monkeypatch):
    p = _write(tmp_path, _zip64(monkeypatch))
    entries, start = listing(str(p))
    with zipfile.ZipFile(p) as z, open(p, "rb") as f:
        assert start == z.start_dir
        for i in z.infolist():
            f.seek(i.header_offset)
            head = f.read(30)
            e = entries[i.filename]
            assert e.data == i.header_offset + 30 + sum(struct.unpack("<HH", head[26:30]))
            assert (e.size, e.crc, e.flags, e.stored) == (i.file_size, i.CRC, i.flag_bits, True)
    with pytest.warns(UserWarning, match="Duplicate name"):
        dup = _write(tmp_path, _zip([("archive/data.pkl", PKL), ("archive/data.pkl", b"second")]), "d")
    assert listing(str(dup))[0]["archive/data.pkl"].header == 0  # the first, as torch reads
    broken = _edit(p.read_bytes(), _at(p.read_bytes(), b"PK\x03\x04", 1), "<4s", b"XK\x03\x04")
    with pytest.raises(ModelFileError, match="broken zip entry archive/version"):
        listing(str(_write(tmp_path, broken, "b.pth")))


# -- irregular archives: zipfile's answer, word for word --------------------------------------------
def _cd_size(d: bytes) -> int:
    return struct.unpack_from("<L", d, _end(d) + 12)[0]


def _truncated_cd(d: bytes) -> bytes:
    e = _end(d)
    return d[:e] + b"\0" * 10 + _add(d[e:], 12, "<L", 10)


def _extra(d: bytes) -> bytes:
    info = zipfile.ZipInfo("archive/version")
    info.extra = b"\x01\x00\x10\x00" + b"\0" * 8  # claims 16 bytes, holds 8
    return _zip([("archive/data.pkl", PKL), (info, b"3\n")])


def _zip64_short(d: bytes) -> bytes:
    info = zipfile.ZipInfo("archive/version")
    info.extra = b"\x01\x00\x04\x00" + b"\0" * 4  # a zip64 field too short for the offset
    out = _zip([("archive/data.pkl", PKL), (info, b"3\n")])
    return _edit(out, _at(out, b"PK\x01\x02", 1) + 42, "<L", 0xFFFF_FFFF)


def _comment_length(d: bytes) -> bytes:
    out = _zip(comment=b"abcdef")
    return _edit(out, _end(out) + 20, "<H", 2)


DIR_CASES: dict[str, tuple[Callable[[bytes], bytes], str | None]] = {
    "truncated_central_directory": (_truncated_cd, "Truncated central directory"),
    "bad_central_signature": (lambda d: _edit(d, _at(d, b"PK\x01\x02", 1), "<4s", b"PK\x01\x03"),
                              "Bad magic number for central directory"),
    "directory_before_the_file": (lambda d: _edit(d, _end(d) + 12, "<L", _end(d) + 1),
                                  "Bad offset for central directory"),
    "offset_past_the_end": (lambda d: _add(d, _end(d) + 16, "<L", 1 << 20), "Invalid argument"),
    "entry_count_mismatch": (lambda d: _add(_add(d, _end(d) + 8, "<H", 1), _end(d) + 10, "<H", 1), None),
    "comment_length_mismatch": (_comment_length, None),
    "trailing_bytes": (lambda d: d + b"junk", None),
    "entry_past_the_directory": (lambda d: _add(d, _at(d, b"PK\x01\x02", 1) + 28, "<H", 3), None),
    "data_before_the_archive": (lambda d: b"junk" + d, None),
    "disk_numbers": (lambda d: _edit(d, _end(d) + 4, "<HH", 1, 1), None),
    "nul_in_a_name": (lambda d: d.replace(b"archive/version", b"archive/ver\0ion"), None),
    "version_needed_6_4": (lambda d: _edit(d, _at(d, b"PK\x01\x02", 1) + 6, "<B", 64), "zip file version 6.4"),
    "corrupt_extra_field": (_extra, "Corrupt extra field 0001"),
    "corrupt_zip64_field": (_zip64_short, "Corrupt zip64 extra field"),
    "bad_utf8_name": (lambda d: _zip([("archive/data.pkl", PKL), ("archive/vé", b"3\n")]).replace(
        "é".encode(), b"\xff\xfe"), "can't decode"),
    "not_a_zip_end": (lambda d: d[:-22], "File is not a zip file"),
    "empty_file": (lambda d: b"", "File is not a zip file"),
    "end_signature_in_the_comment": (lambda d: _zip(comment=b"PK\x05\x06 in a comment"),
                                     "File is not a zip file"),
}


@pytest.mark.parametrize("case", sorted(DIR_CASES))
def test_irregular_directory_takes_zipfiles_path(case, tmp_path):
    build, fragment = DIR_CASES[case]
    p = _write(tmp_path, build(_zip()))
    with open(p, "rb") as f:
        assert read_dir(f) is None
    assert _our_answer(p) == _zipfile_answer(p)
    if fragment:
        assert fragment in str(_our_answer(p))
    else:  # zipfile reads these: so do we, through it, with its names
        assert _our_answer(p) == PKL
        with zipfile.ZipFile(p) as z, read_zip(str(p)) as zipped:
            assert zipped.names == z.namelist()


def test_spanned_zip64_is_zipfiles_error(tmp_path, monkeypatch):
    data = _zip64(monkeypatch)
    p = _write(tmp_path, _edit(data, data.rfind(b"PK\x06\x07") + 16, "<L", 2))
    with open(p, "rb") as f:
        assert read_dir(f) is None
    assert _our_answer(p) == _zipfile_answer(p) == (
        "broken zip archive (zipfiles that span multiple disks are not supported)")


def _local_name(d: bytes) -> bytes:
    return d.replace(b"archive/data.pkl", b"archive/data.pkX", 1)


READ_CASES: dict[str, tuple[Callable[[bytes], bytes], str | None]] = {
    "bad_crc": (lambda d: _add(d, _at(d, b"PK\x01\x02") + 16, "<L", 1), "Bad CRC-32"),
    "local_signature": (lambda d: _edit(d, 0, "<4s", b"PK\x03\x05"), "Bad magic number for file header"),
    "local_name_differs": (_local_name, "File name in directory"),
    "encrypted": (lambda d: _add(d, _at(d, b"PK\x01\x02") + 8, "<H", 1), "password required"),
    "strong_encryption": (lambda d: _add(d, _at(d, b"PK\x01\x02") + 8, "<H", 0x40), "strong encryption"),
    "sizes_differ": (lambda d: _add(d, _at(d, b"PK\x01\x02") + 20, "<L", 1), None),
    "data_cut_short": (lambda d: _add(_add(d, _at(d, b"PK\x01\x02") + 20, "<L", 1 << 20),
                                      _at(d, b"PK\x01\x02") + 24, "<L", 1 << 20), None),
    "deflated": (lambda d: _zip(method=zipfile.ZIP_DEFLATED), None),
    "unknown_method": (lambda d: _edit(d, _at(d, b"PK\x01\x02") + 10, "<H", 99), "compression"),
}


@pytest.mark.parametrize("case", sorted(READ_CASES))
def test_irregular_data_pkl_is_read_by_zipfile(case, tmp_path):
    build, fragment = READ_CASES[case]
    p = _write(tmp_path, build(_zip()))
    with open(p, "rb") as f:
        assert read_dir(f) is not None  # the directory itself is regular
    answer = _our_answer(p)
    assert answer == _zipfile_answer(p)
    assert fragment is None or fragment in str(answer)


# -- work: a wide archive is a handful of reads, and zipfile parses no directory ---------------------
def _spy_zipfile(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = zipfile.ZipFile._RealGetContents

    def spy(self: zipfile.ZipFile) -> None:
        calls.append(1)
        real(self)

    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", spy)
    return calls


class _Counting:
    """A file that counts its read() calls."""

    def __init__(self, f: io.BufferedReader) -> None:
        self.f, self.reads = f, 0

    def read(self, n: int = -1) -> bytes:
        self.reads += 1
        return self.f.read(n)

    def __getattr__(self, name: str) -> object:
        return getattr(self.f, name)


def test_wide_archive_is_a_handful_of_reads(tmp_path, monkeypatch):
    entries = [("wide/data.pkl", PKL)] + [(f"wide/data/{i}", b"\0" * 8) for i in range(3000)]
    p = _write(tmp_path, _zip(entries))
    files: list[_Counting] = []

    def counting_open(path: str, mode: str = "r") -> _Counting:
        files.append(_Counting(builtins.open(path, mode)))
        return files[-1]

    monkeypatch.setattr(containers, "open", counting_open, raising=False)
    parsed = _spy_zipfile(monkeypatch)
    src = open_zip(str(p))
    assert src.pickle_bytes == PKL and src.prefix == "wide/"
    assert parsed == []  # no ZipInfo per entry
    assert len(files) == 1 and files[0].reads <= 5  # tail, directory, local header, name, data


def test_remote_file_object_reads_the_directory_once(tmp_path):
    entries = [("wide/data.pkl", PKL)] + [(f"wide/data/{i}", b"\0" * 8) for i in range(3000)]
    p = _write(tmp_path, _zip(entries))

    class Counted(LocalSource):
        calls = 0

        def read_at(self, offset: int, n: int) -> bytes:
            Counted.calls += 1
            return super().read_at(offset, n)

    src = Counted(str(p))
    d = read_dir(RangeFile(src))  # type: ignore[arg-type]
    assert d is not None and len(d) == 3001 and Counted.calls == 2  # the tail, the directory
    assert [tuple(e) for e in d.entries()] == _zipfile_fields(p)[0]
    src.close()
    small = Counted(str(_write(tmp_path, _zip(), "small.pth")))
    Counted.calls = 0
    assert read_dir(RangeFile(small)) is not None and Counted.calls == 1  # the tail holds it all
    small.close()
