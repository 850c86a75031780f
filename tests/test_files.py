"""Atomic output files: permissions like open(), no partial or temporary file left."""
from __future__ import annotations

import os
import stat

import pytest

from engine.files import atomic_write


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_file_mode_follows_the_umask_like_open(tmp_path, umask_022):
    atomic_write(tmp_path / "a.csv", lambda tmp: open(tmp, "w").write("x\n"))
    with open(tmp_path / "b.csv", "w") as fh:
        fh.write("x\n")
    assert _mode(tmp_path / "a.csv") == _mode(tmp_path / "b.csv") == 0o644


def test_writer_sees_the_target_suffix_and_the_file_replaces_the_old_one(tmp_path):
    target = tmp_path / "fan.png"
    target.write_text("old")
    seen = []
    atomic_write(target, lambda tmp: (seen.append(tmp), open(tmp, "w").write("new")))
    assert seen[0].endswith(".png") and os.path.dirname(seen[0]) == str(tmp_path)
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fan.png"]


def test_failed_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.parquet"
    target.write_text("old")

    def fail(tmp):
        open(tmp, "w").write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]


def test_missing_directory_is_named_before_writing(tmp_path):
    calls = []
    with pytest.raises(ValueError, match="output directory does not exist: .*nowhere"):
        atomic_write(tmp_path / "nowhere" / "x.csv", calls.append)
    assert calls == []


def test_a_temporary_name_that_exists_is_drawn_again(tmp_path, monkeypatch):
    import engine.files as F
    names = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(F.secrets, "token_hex", lambda n: next(names))
    squatter = tmp_path / ".out.csv.aaaa.tmp.csv"
    squatter.write_text("someone else's")
    atomic_write(tmp_path / "out.csv", lambda tmp: open(tmp, "w").write("x"))
    assert squatter.read_text() == "someone else's"
    assert (tmp_path / "out.csv").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.csv.aaaa.tmp.csv", "out.csv"]

