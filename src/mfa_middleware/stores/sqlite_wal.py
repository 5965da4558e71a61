"""A cheap, exact "has anyone committed?" signal for a SQLite database in WAL mode.

SQLite keeps the WAL index header at the start of the `-shm` file, which every connection
maps into memory: each commit (of any connection, in any process) rewrites it, and readers
compare its two copies to see a consistent one (the documented WAL-index format, version
3007000: walformat.html). We copy those 96 bytes straight from the mapping SQLite itself made
in this process (found once in /proc/self/maps): no system call and no trip through the
sqlite3 module, where `PRAGMA data_version` costs microseconds on the verified-request path.

Why read SQLite's mapping rather than open the file ourselves: on POSIX, closing *any*
descriptor of a file drops every lock the process holds on it, SQLite's shared-memory locks
included, and other processes would then rebuild the index under our connections.

The mapping lives as long as one connection of this process has the database open, so the
watch holds its own connection, closed only when the watch object is garbage collected (a
reader holds a reference while it reads). Where the mapping is not found (no /proc, another
VFS, a database not in WAL mode), `open_watch` returns None and the store asks SQLite instead.
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
import sys

WAL_INDEX_VERSION = 3007000
HEADER_SIZE = 48  # one copy of the WAL index header; SQLite writes two, back to back
MAPS = "/proc/self/maps"


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


class WalWatch:
    """The WAL index header of one database file, read from SQLite's own mapping of it."""

    __slots__ = ("_conn", "_header")

    def __init__(self, conn: sqlite3.Connection, address: int) -> None:
        self._conn = conn  # keeps SQLite's mapping alive for as long as this watch lives
        self._header = (ctypes.c_char * (2 * HEADER_SIZE)).from_address(address)

    def read(self) -> bytes:
        """Both copies of the header as they are now; compare with the last `settled` read."""
        return self._header.raw

    @staticmethod
    def settled(data: bytes) -> bool:
        """Whether `data` is a header SQLite finished writing, initialised, of the version we
        know; otherwise (being written, or a format we cannot read) the store asks SQLite."""
        return (
            len(data) == 2 * HEADER_SIZE
            and data[:HEADER_SIZE] == data[HEADER_SIZE:]
            and int.from_bytes(data[:4], sys.byteorder) == WAL_INDEX_VERSION
            and data[12] == 1  # isInit
        )


def open_watch(path: str, timeout: float) -> WalWatch | None:
    """A watch on `path`, or None where there is no mapped WAL index to read (an in-memory
    database, a journal mode other than WAL, no /proc, a VFS that maps it elsewhere)."""
    if path == ":memory:" or path.startswith("file:") or not os.path.exists(MAPS):
        return None
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() == "wal":
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # maps the index
            address = _shm_address(os.path.realpath(path) + "-shm")
            if address is not None:
                watch = WalWatch(conn, address)
                if watch.settled(watch.read()):
                    return watch
    except sqlite3.Error:
        pass
    conn.close()  # no mapping of ours to lose: SQLite's own stay with its other connections
    return None
