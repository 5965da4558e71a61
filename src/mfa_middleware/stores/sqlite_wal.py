"""A cheap, exact "has anyone committed?" signal for a SQLite database in WAL mode.

SQLite keeps the WAL index header at the start of the `-shm` file, which every connection
maps into memory: each commit (of any connection, in any process) rewrites it, and readers
compare its two copies to see a consistent one (the documented WAL-index format, version
3007000: walformat.html). Comparing those 96 bytes with the last ones seen costs far less than
`PRAGMA data_version`, a statement through the sqlite3 module on the verified-request path.

Two ways to read them, both through what SQLite itself opened in this process:

- `"pread"` (the store's default): `os.pread` on SQLite's own descriptor of the `-shm` file,
  found once in /proc/self/fd. One system call, and it cannot fault: if the file was truncated
  under SQLite, it returns fewer bytes and the store raises `StoreError`.
- `"mapping"`: a copy from SQLite's own mapping of the file, found once in /proc/self/maps. No
  system call at all, but reading a mapped page past the end of a truncated file kills the
  process with SIGBUS, as SQLite's own next read of it would.

Why SQLite's descriptor or mapping rather than our own: on POSIX, closing *any* descriptor of a
file drops every lock the process holds on it, SQLite's shared-memory locks included, and other
processes would then rebuild the index under our connections.

SQLite keeps that descriptor and mapping as long as one connection of this process has the
database open, so a watch holds its own connection, closed only when the watch object is
garbage collected (a reader holds a reference while it reads). Where neither is found (no
/proc, another VFS), or with `change_signal="pragma"`, a `VersionWatch` asks
`PRAGMA data_version` on its own connection instead, with a busy timeout of 0: any thread (the
event loop's included) may read it, and a read that would wait says so at once. A database
not in WAL mode gets no watch at all (`open_watch` returns None): each thread then asks
SQLite on its own connection.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from typing import Any, Literal

WAL_INDEX_VERSION = 3007000
HEADER_SIZE = 48  # one copy of the WAL index header; SQLite writes two, back to back
WATCHED = 2 * HEADER_SIZE
FDS = "/proc/self/fd"
MAPS = "/proc/self/maps"

HeaderRead = Literal["pread", "mapping", "pragma"]


class WalWatch:
    """The WAL index header of one database file, read through what SQLite opened for it."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn  # keeps SQLite's descriptor and mapping open as long as this lives

    def read(self) -> bytes:
        """Both copies of the header as they are now; compare with the last `settled` read."""
        raise NotImplementedError

    @staticmethod
    def settled(data: bytes) -> bool:
        """Whether `data` is a header SQLite finished writing, initialised, of the version we
        know; otherwise (being written, or a format we cannot read) the store asks SQLite."""
        return (
            len(data) == WATCHED
            and data[:HEADER_SIZE] == data[HEADER_SIZE:]
            and int.from_bytes(data[:4], sys.byteorder) == WAL_INDEX_VERSION
            and data[12] == 1  # isInit
        )

    def cut_short(self) -> bool:
        """Whether the -shm file was truncated under SQLite, whose own next read of it would
        fault, so the store must not ask SQLite either; only a `pread` can tell (a mapping
        read faults first, `PRAGMA data_version` is SQLite's own read)."""
        return False


class DescriptorWatch(WalWatch):
    """Reads the header with `os.pread` on SQLite's own descriptor of the `-shm` file."""

    __slots__ = ("_fd",)

    def __init__(self, conn: sqlite3.Connection, fd: int) -> None:
        super().__init__(conn)
        self._fd = fd

    def read(self) -> bytes:
        """Fewer than 96 bytes when the file was truncated under SQLite (never a signal)."""
        return os.pread(self._fd, WATCHED, 0)

    def cut_short(self) -> bool:
        return len(self.read()) < WATCHED


class MappingWatch(WalWatch):
    """Copies the header from SQLite's own mapping of the `-shm` file."""

    __slots__ = ("_header",)

    def __init__(self, conn: sqlite3.Connection, address: int) -> None:
        import ctypes  # only for this opt-in read

        super().__init__(conn)
        self._header: Any = (ctypes.c_char * WATCHED).from_address(address)

    def read(self) -> bytes:
        """SIGBUS if the file was truncated below the header's page under SQLite."""
        data: bytes = self._header.raw
        return data


class VersionWatch(WalWatch):
    """`PRAGMA data_version` on the watch's own connection: it changes with every commit of
    any other connection. One statement rather than a copy of bytes; used where the header
    cannot be read (no /proc) and for `change_signal="pragma"`."""

    __slots__ = ("_lock",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)
        self._lock = threading.Lock()  # one statement at a time on the shared connection

    def read(self) -> bytes:
        """sqlite3.OperationalError instead of waiting, when SQLite is busy (rebuilding the
        index after a crash): the caller asks again off the event loop."""
        with self._lock:
            version: int = self._conn.execute("PRAGMA data_version").fetchone()[0]
        return version.to_bytes(8, "little")

    @staticmethod
    def settled(data: bytes) -> bool:
        return True  # any version SQLite answers is a settled one


def _shm_descriptor(shm_path: str) -> int | None:
    """SQLite's descriptor of `shm_path` in this process, if it has one."""
    try:
        names = os.listdir(FDS)
    except OSError:
        return None
    for name in names:
        try:
            if os.readlink(f"{FDS}/{name}") == shm_path:  # a deleted file reads "... (deleted)"
                return int(name)
        except (OSError, ValueError):  # closed since listed (listdir's own), or not a number
            continue
    return None


def _shm_address(shm_path: str) -> int | None:
    """Where SQLite mapped the first region of `shm_path` in this process, if it did."""
    try:
        with open(MAPS, encoding="utf-8", errors="replace") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                # the first region (offset 0) of the file: the header is there
                if len(fields) == 6 and fields[5].rstrip("\n") == shm_path and fields[2] == "0" * 8:
                    return int(fields[0].split("-", 1)[0], 16)
    except OSError:
        return None
    return None


def _watch(conn: sqlite3.Connection, shm_path: str, how: HeaderRead) -> WalWatch | None:
    if how == "pread":
        fd = _shm_descriptor(shm_path)
        return None if fd is None else DescriptorWatch(conn, fd)
    address = _shm_address(shm_path)
    return None if address is None else MappingWatch(conn, address)


def open_watch(path: str, timeout: float, how: HeaderRead = "pread") -> WalWatch | None:
    """A watch on `path`, or None where there is no WAL index of SQLite's to read (an
    in-memory database, a journal mode other than WAL; for "pread" and "mapping" also no
    /proc, a VFS that keeps it elsewhere). Opening it may wait for SQLite: not on an event
    loop."""
    if path == ":memory:" or path.startswith("file:"):
        return None
    if how != "pragma" and not os.path.exists(FDS if how == "pread" else MAPS):
        return None
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() == "wal":
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the index
            if how == "pragma":
                conn.execute("PRAGMA busy_timeout=0")  # a read that would wait says so
                return VersionWatch(conn)
            watch = _watch(conn, os.path.realpath(path) + "-shm", how)
            if watch is not None and watch.settled(watch.read()):
                return watch
    except sqlite3.Error:
        pass
    conn.close()  # nothing of ours to lose: SQLite's descriptor stays with its other connections
    return None
