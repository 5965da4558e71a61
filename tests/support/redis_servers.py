"""Real `redis-server` processes on free loopback ports, started and killed by the tests.

Where `redis-server` is missing: under CI (CI=true) the tests fail, since CI must install it;
on a developer's machine they are skipped with a loud reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def require_redis() -> None:
    if REDIS_SERVER and REDIS_CLI:
        return
    message = "redis-server/redis-cli not installed: install Debian's redis-server (see .ci/run)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(f"SKIPPING REDIS TESTS: {message}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is valid and free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@dataclass
class RedisServer:
    """One redis-server with its own folder (AOF on, so data survives a restart)."""

    directory: Path
    port: int = field(default_factory=free_port)
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--protected-mode",
                "no",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)


@contextmanager
def redis_server(directory: Path, *extra: str) -> Iterator[RedisServer]:
    require_redis()
    server = RedisServer(directory, extra=extra)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def redis_cluster(directory: Path, masters: int = 3) -> Iterator[list[RedisServer]]:
    """A Redis Cluster of `masters` nodes on loopback, made with `redis-cli --cluster create`."""
    require_redis()
    assert REDIS_CLI is not None
    nodes = [
        RedisServer(
            directory / f"node{i}",
            port=free_cluster_port(),
            extra=(
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ),
        )
        for i in range(masters)
    ]
    try:
        for node in nodes:
            node.start()
        subprocess.run(
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *[f"127.0.0.1:{n.port}" for n in nodes],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        probe = redis.Redis(host="127.0.0.1", port=nodes[0].port)
        deadline = time.monotonic() + 20
        while probe.cluster("info").get("cluster_state") != "ok":
            assert time.monotonic() < deadline, "cluster did not reach state ok"
            time.sleep(0.1)
        probe.close()
        yield nodes
    finally:
        for node in nodes:
            node.kill()


@contextmanager
def redis_sentinel(directory: Path, master: RedisServer) -> Iterator[int]:
    """A Sentinel watching `master` under the name "mymaster"; yields the Sentinel's port."""
    require_redis()
    assert REDIS_SERVER is not None
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = directory / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {directory}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n"
        "sentinel down-after-milliseconds mymaster 5000\n"
    )
    process = subprocess.Popen(
        [REDIS_SERVER, str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        probe = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                if probe.sentinel_get_master_addr_by_name("mymaster"):
                    break
            except redis.exceptions.ConnectionError:
                pass
            assert time.monotonic() < deadline, "sentinel did not start"
            time.sleep(0.05)
        probe.close()
        yield port
    finally:
        process.kill()
        process.wait(timeout=10)
