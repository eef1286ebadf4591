"""Giving back the journal pages sd-journal readers hold mapped (jupyter_condasvc.journal.pages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_condasvc.journal import journal_module
from jupyter_condasvc.journal.pages import journal_mappings, release_journal_pages

MAPS = """\
55d0c0a00000-55d0c0a21000 r--p 00000000 fe:00 123 /usr/bin/python3.11
7f8b8bd57000-7f8b8c557000 r--s 00757000 fe:00 1443054 /var/log/journal/3d12/user-1049.journal
7f8b8c557000-7f8b8c600000 r--s 00000000 fe:00 1443055 /run/log/journal/3d12/system@0006-0007.journal~
7f8b8c600000-7f8b8c700000 rw-s 00000000 fe:00 1443056 /var/log/journal/3d12/user-1049.journal
7f8b8c700000-7f8b8c800000 r--s 00000000 fe:00 1443057 /home/u/notes.journal
7f8b8c800000-7f8b8c900000 r--s 00000000 fe:00 1443058 /var/log/journal/3d12/user-1049.journal (deleted)
7f8b8c900000-7f8b8ca00000 rw-p 00000000 00:00 0
"""


def test_journal_mappings_are_the_shared_read_only_maps_of_journal_files():
    # the writable one, a file outside the journal directories, a deleted file and anonymous memory are left alone
    assert journal_mappings(MAPS) == [(0x7F8B8BD57000, 0x7F8B8C557000), (0x7F8B8C557000, 0x7F8B8C600000)]
    assert journal_mappings("") == []


def _rss_file_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.systemd
def test_release_drops_the_pages_readers_hold_and_they_still_read():
    journal = journal_module()
    readers = [journal.Reader(flags=journal.LOCAL_ONLY) for _ in range(4)]
    try:
        for r in readers:
            r.seek_head()
            for _ in range(2000):
                if not r.get_next():
                    break
        if not journal_mappings(Path("/proc/self/maps").read_text()):
            pytest.skip("this user can read no journal file")
        before = _rss_file_kib()
        advised = release_journal_pages()
        after = _rss_file_kib()
        assert advised > 0
        assert after < before, (before, after)
        # the readers go on reading where they were: the pages come back from the page cache
        for r in readers:
            r.seek_head()
            assert r.get_next()
    finally:
        for r in readers:
            r.close()
