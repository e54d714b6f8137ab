"""Leftovers of killed processes: found by name, removed only when their writer has ended."""

import os
import re

import pytest

from napari_colorize.leftovers import process_alive, remove_leftovers

PATTERN = re.compile(r"^\.out\.(?P<pid>\d+)\.tmp$")
NO_PID = re.compile(r"^tmp[a-z]{4}$")
DEAD = 999_999_999  # beyond any pid_max


def _make(path, *, folder=False, age=3600.0):
    if folder:
        path.mkdir()
        (path / "inner").write_text("x")
    else:
        path.write_text("x")
    for p in [path, *(path.rglob("*") if folder else [])]:
        os.utime(p, (p.stat().st_mtime - age,) * 2)
    return path


def test_a_dead_processs_old_entries_go_and_nothing_else(tmp_path):
    dead_file = _make(tmp_path / f".out.{DEAD}.tmp")
    dead_young = _make(tmp_path / f".out.{DEAD + 1}.tmp", age=0)
    mine = _make(tmp_path / f".out.{os.getpid()}.tmp")
    other = _make(tmp_path / "out.png")
    removed = remove_leftovers(tmp_path, PATTERN)
    assert removed == [dead_file]
    assert dead_young.exists()
    assert mine.exists()
    assert other.exists()


def test_untouched_entries_go_whoever_wrote_them(tmp_path):
    old = _make(tmp_path / "tmpabcd", folder=True)
    fresh = _make(tmp_path / "tmpwxyz", age=10)
    removed = remove_leftovers(tmp_path, NO_PID, untouched_after_s=600)
    assert removed == [old]
    assert fresh.exists()


def test_a_recent_write_inside_a_folder_keeps_it(tmp_path):
    folder = _make(tmp_path / f".out.{DEAD}.tmp", folder=True)
    (folder / "inner").write_text("written just now")
    assert remove_leftovers(tmp_path, PATTERN) == []


@pytest.mark.parametrize(("kind", "kept"), [("file", "dir"), ("dir", "file")])
def test_kind_limits_what_is_removed(tmp_path, kind, kept):
    made = {
        "file": _make(tmp_path / f".out.{DEAD}.tmp"),
        "dir": _make(tmp_path / f".out.{DEAD + 1}.tmp", folder=True),
    }
    removed = remove_leftovers(tmp_path, PATTERN, kind=kind)
    assert removed == [made[kind]]
    assert made[kept].exists()


def test_an_unreadable_folder_removes_nothing(tmp_path):
    assert remove_leftovers(tmp_path / "missing", PATTERN) == []
    with pytest.raises(ValueError, match="kind must be"):
        remove_leftovers(tmp_path, PATTERN, kind="link")


def test_process_alive():
    assert process_alive(os.getpid())
    assert not process_alive(DEAD)
