"""The concrete ``Host`` aliases of the user's ``~/.ssh/config`` (``CondaSvcApp.hosts_from_ssh_config``).

A small reader of the one thing we need from ssh_config(5): every name a ``Host`` line gives that is a host
one can type, not a pattern. Patterns (``*``, ``?``), negations (``!name``) and ``Match`` blocks are left out;
``Include`` is honoured as ssh does it (``~`` expanded, a relative path taken from ``~/.ssh``, globs expanded
in order, nested at most 16 deep). ``~`` is the user's home as ssh sees it: the password database's, not
``$HOME`` (ssh reads ``~/.ssh/config`` from there whatever ``$HOME`` says). Keywords are case-insensitive and
may be written ``Host=name``; arguments may be double-quoted. What each alias means (its address, user, port,
key) is left to ssh itself, which reads the same file when it dials (``ssh -G ALIAS`` shows it): nothing here
is parsed twice.

Pure apart from :class:`AliasCache` reading the files: :func:`aliases` takes the text and a reader.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
from typing import Callable, List, Optional

#: ssh's own limit on nested Include (readconf.c READCONF_MAX_DEPTH).
MAX_DEPTH = 16

_KEYWORD = re.compile(r"\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*)$")


def home() -> str:
    """The user's home as ssh expands ``~``: the password database's entry (``$HOME`` if there is none)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return os.path.expanduser("~")


def _expand_tilde(path: str, home_dir: str) -> str:
    return home_dir + path[1:] if path == "~" or path.startswith("~/") else path


def split_args(text: str) -> List[str]:
    """ssh_config(5)'s arguments: separated by blanks, ``"double quoted"`` ones may hold blanks; ``#`` starts a
    comment at the start of an argument."""
    out: List[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] == "#":
            break
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:  # ssh refuses the line; so do we
                return out
            out.append(text[i + 1 : end])
            i = end + 1
        else:
            start = i
            while i < n and text[i] not in " \t":
                i += 1
            out.append(text[start:i])
    return out


def is_concrete(name: str) -> bool:
    """A name one can ``ssh`` to as written: no pattern characters, not a negation, no blanks."""
    return bool(name) and not any(c in name for c in "*?!") and not any(c.isspace() for c in name)


def aliases(
    text: str,
    *,
    ssh_dir: str,
    read: Callable[[str], Optional[str]],
    expand: Callable[[str], List[str]] = lambda pattern: sorted(glob.glob(pattern)),
    home_dir: str = "",
    depth: int = 0,
) -> List[str]:
    """The concrete Host aliases of one config file's ``text``, in order, each once; ``Include`` files are read
    with ``read(path)`` (None: unreadable, skipped as ssh skips a missing one)."""
    out: List[str] = []
    for line in text.splitlines():
        m = _KEYWORD.match(line)
        if m is None:
            continue
        keyword, args = m.group(1).lower(), split_args(m.group(2))
        if keyword == "host":
            out += [a for a in args if is_concrete(a)]
        elif keyword == "include" and depth < MAX_DEPTH:
            for arg in args:
                path = _expand_tilde(arg, home_dir or os.path.dirname(ssh_dir))
                if not os.path.isabs(path):
                    path = os.path.join(ssh_dir, path)
                for found in expand(path):
                    sub = read(found)
                    if sub is not None:
                        out += aliases(
                            sub, ssh_dir=ssh_dir, read=read, expand=expand, home_dir=home_dir, depth=depth + 1
                        )
    seen: set = set()
    return [a for a in out if not (a in seen or seen.add(a))]  # type: ignore[func-returns-value]


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def read_aliases(path: Optional[str] = None) -> List[str]:
    """The concrete aliases of ``path`` (default ``~/.ssh/config``) and what it includes; [] without the file."""
    return AliasCache(path).aliases()


def _stat(path: str) -> Optional[tuple]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class AliasCache:
    """:func:`read_aliases`, read again only when one of the files it read (or the config itself) changed: a stat
    per file per call, no read (the hosts are checked at every request that names one)."""

    def __init__(self, path: Optional[str] = None) -> None:
        self.home = home()
        self.path = path or os.path.join(self.home, ".ssh", "config")
        self._stamps: dict = {}
        self._aliases: List[str] = []
        self.reads = 0

    def aliases(self) -> List[str]:
        if self._stamps and all(_stat(p) == s for p, s in self._stamps.items()):
            return self._aliases
        stamps = {self.path: _stat(self.path)}

        def read(p: str) -> Optional[str]:
            stamps[p] = _stat(p)
            return _read(p)

        text = read(self.path)
        self.reads += 1
        ssh_dir = os.path.join(self.home, ".ssh")
        self._aliases = [] if text is None else aliases(text, ssh_dir=ssh_dir, read=read, home_dir=self.home)
        self._stamps = stamps
        return self._aliases
