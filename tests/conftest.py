"""Shared fixtures: async tests run on asyncio and trio; the Redis servers of the response
cache and shared-state tests.

Redis: ``redis_url`` is ``$MULTIMODEL_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``;
``.ci/run`` starts one and sets it). Its tests are skipped without the ``redis`` extra, or when
the variable is unset *and* nothing answers at the default URL; when the variable is set, an
unreachable server is a failure, not a skip. ``redis_process`` is a ``redis-server`` of the
test's own that can be stopped and restarted (skipped when it is not installed).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REDIS_ENV = "MULTIMODEL_TEST_REDIS_URL"
REDIS_DEFAULT_URL = "redis://127.0.0.1:6379/15"
_NEEDS_REDIS = "needs the redis extra: pip install 'multimodel[redis]'"


def pytest_report_header(config: pytest.Config) -> str:
    """Which multimodel is under test: the installed wheel in CI, src/ in an editable install."""
    import multimodel

    return f"multimodel {multimodel.__version__} from {Path(multimodel.__file__).parent}"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _hypothesis_profile() -> None:
    # In CI, generate the same examples every run: a red build must be reproducible.
    import os

    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, deadline=None, database=None)
    if os.environ.get("CI"):
        settings.load_profile("ci")


_hypothesis_profile()


# -- Redis -------------------------------------------------------------------------------------


def _answers_ping(url: str) -> bool:
    """Whether a Redis server answers PING at ``url`` (raw socket: works without `redis`)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
    except OSError:
        return False
    # An instance with a password answers -NOAUTH: it is there; the client will authenticate.
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis server's URL (see the module docs)."""
    pytest.importorskip("redis", reason=_NEEDS_REDIS)
    url = os.environ.get(REDIS_ENV)
    if url is None:
        if not _answers_ping(REDIS_DEFAULT_URL):
            pytest.skip(f"no Redis at {REDIS_DEFAULT_URL} and {REDIS_ENV} is unset")
        url = REDIS_DEFAULT_URL
    elif not _answers_ping(url):
        pytest.fail(f"{REDIS_ENV}={url} is set but no Redis server answers there")
    return url


@pytest.fixture
def raw(redis_url: str) -> Iterator[Any]:
    """A plain ``redis.Redis`` on the test server, to read and write keys directly."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def dead_redis_url() -> str:
    """A Redis URL where nothing listens (a free local port)."""
    pytest.importorskip("redis", reason=_NEEDS_REDIS)
    return f"redis://127.0.0.1:{_free_port()}/0"


class RedisProcess:
    """A redis-server of the test's own, on a fixed port, that can be stopped and restarted."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _answers_ping(self.url):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def redis_process() -> Iterator[RedisProcess]:
    """A redis-server of the test's own (see :class:`RedisProcess`)."""
    pytest.importorskip("redis", reason=_NEEDS_REDIS)
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    server = RedisProcess(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
