"""A real PostgreSQL server (Debian's `postgresql` package) on a free loopback port with a
private data directory, started and stopped by the tests.

PostgreSQL refuses to run as root: as root the server runs as the `postgres` user the
Debian package creates, in a data directory made for it under the system's temp folder.
Where the server or `psycopg` is missing: under CI (CI=true) the tests fail, since CI must
install them (scripts/system-deps.sh, the `postgres` extra); elsewhere they are skipped with
a loud reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.redis_servers import free_port


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


BINDIR = _bindir()


def require_postgres() -> None:
    missing = []
    if BINDIR is None:
        missing.append("the PostgreSQL server (Debian's postgresql package)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing.append("psycopg (pip install -e '.[dev]')")
    if os.geteuid() == 0 and not _postgres_user():
        missing.append("the postgres user (created by Debian's postgresql package)")
    if not missing:
        return
    message = f"{', '.join(missing)} not installed (see scripts/system-deps.sh)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(f"SKIPPING POSTGRESQL TESTS: {message}")


def _postgres_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


@dataclass
class PostgresServer:
    directory: Path
    port: int
    user: str
    process: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def django_settings(self, database: str) -> dict[str, object]:
        """A `DATABASES` entry for `database` on this server."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": database,
            "USER": self.user,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
        }

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')


def _run_as(user: pwd.struct_passwd | None) -> dict[str, object]:
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid}


@contextmanager
def postgres_server(max_connections: int = 300) -> Iterator[PostgresServer]:
    """initdb, start on a free port (TCP on 127.0.0.1 only), stop and delete at the end."""
    require_postgres()
    assert BINDIR is not None
    owner = _postgres_user() if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="mfa-postgres-"))
    if owner is not None:
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    data = directory / "data"
    user = "postgres" if owner is not None else pwd.getpwuid(os.geteuid()).pw_name
    subprocess.run(
        [str(BINDIR / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        timeout=120,
        **_run_as(owner),  # type: ignore[arg-type]
    )
    server = PostgresServer(directory, free_port(), user)
    server.process = subprocess.Popen(
        [
            str(BINDIR / "postgres"),
            "-D",
            str(data),
            "-p",
            str(server.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            f"max_connections={max_connections}",
            "-c",
            "fsync=off",  # a throwaway server: durability is not what these tests are about
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "server.log", "wb"),  # noqa: SIM115 (the server keeps it)
        **_run_as(owner),  # type: ignore[arg-type]
    )
    try:
        _wait_until_ready(server)
        yield server
    finally:
        server.process.send_signal(signal.SIGINT)  # a fast shutdown: clients are cut off
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_until_ready(server: PostgresServer) -> None:
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(server.url(), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            assert server.process is not None
            if server.process.poll() is not None or time.monotonic() > deadline:
                log = (server.directory / "server.log").read_text(errors="replace")
                raise RuntimeError(f"PostgreSQL did not start:\n{log}") from None
            time.sleep(0.1)
