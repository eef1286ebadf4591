"""dirwatch: a change counter for directories (real inotify on a temporary directory)."""

from __future__ import annotations

import os

from jupyter_condasvc.dirwatch import DirWatch


def test_generation_changes_exactly_when_a_directory_does(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x.json").write_text("1")
    watch = DirWatch([str(a), str(b)])
    g0 = watch.poll()
    assert watch.poll() == g0 == watch.poll(), "nothing changed"
    (a / "x.json").read_text()
    assert watch.poll() == g0, "reading is not a change"

    with open(a / "x.json", "r+") as fh:  # edited in place: no new inode, no rename
        fh.write("2")
    g1 = watch.poll()
    assert g1 != g0
    assert watch.poll() == g1

    (b / "tmp").write_text("new")
    os.replace(b / "tmp", b / "unit.service")  # an atomic write
    g2 = watch.poll()
    assert g2 != g1
    (b / "unit.service").unlink()
    assert watch.poll() != g2
    watch.close()


def test_a_missing_directory_is_a_change_on_every_poll_until_it_exists(tmp_path):
    later = tmp_path / "later"
    watch = DirWatch([str(later)])
    g = [watch.poll() for _ in range(3)]
    assert len(set(g)) == 3
    later.mkdir()
    first = watch.poll()  # armed now
    assert watch.poll() == first
    (later / "f").write_text("x")
    assert watch.poll() != first
    later_gen = watch.poll()
    (later / "f").unlink()
    later.rmdir()  # the watch is dropped: changed again on every poll
    assert watch.poll() != later_gen
    assert watch.poll() != watch.poll()
    watch.close()
