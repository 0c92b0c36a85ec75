"""Database fixtures shared by every test layer.

SQLite: the migrations run once into a template file that each test copies (fast, and every test
starts from a schema produced by Alembic, never by ``create_all``).
PostgreSQL: the migrations run once into a template database; each test gets ``CREATE DATABASE …
TEMPLATE``. Under CI (``CI=true``) an unreachable server fails the run; elsewhere those tests skip
with a message that says why.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest
from hypothesis import settings

from quietline.platform import migrate
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings
from quietline.platform.sms import RecordingSmsSender

PG_ADMIN_URL = os.environ.get("QUIETLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Under CI the property tests draw the same examples on every run, so a commit's CI verdict is
# reproducible; locally they keep drawing new ones (and remember failures in .hypothesis/).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if IN_CI:
    settings.load_profile("ci")


def _pg_connect(dbname: str | None = None):  # type: ignore[no-untyped-def]
    import psycopg

    url = PG_ADMIN_URL if dbname is None else PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname
    return psycopg.connect(url, autocommit=True, connect_timeout=3)


def _pg_url(dbname: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + dbname


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    try:
        conn = _pg_connect()
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL is unreachable at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({exc}); PostgreSQL tests skipped")
    name = f"ql_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate.upgrade(_pg_url(name))
    yield name
    with _pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_sqlite(template: Path, tmp_path: Path) -> str:
    path = tmp_path / "quietline.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return _fresh_sqlite(sqlite_template, tmp_path)


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    name = f"ql_t_{uuid.uuid4().hex[:12]}"
    with _pg_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _pg_url(name)
    with _pg_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Both backends: integration tests that take ``db_url`` run on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


def make_settings(url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": Environment.TEST,
        "database_url": url,
        "secret_key": "test-secret-" + tmp_path.name,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sms() -> RecordingSmsSender:
    return RecordingSmsSender()


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path, clock: FakeClock, sms: RecordingSmsSender) -> Iterator[Runtime]:
    """A runtime on a fresh migrated SQLite file with a fake clock and a recording SMS sender."""
    rt = Runtime.build(make_settings(sqlite_url, tmp_path), clock=clock, sms=sms)
    yield rt
    rt.close()


@pytest.fixture
def any_runtime(db_url: str, tmp_path: Path, clock: FakeClock, sms: RecordingSmsSender) -> Iterator[Runtime]:
    """Like ``runtime`` but on both SQLite and PostgreSQL (integration tests)."""
    rt = Runtime.build(make_settings(db_url, tmp_path), clock=clock, sms=sms)
    yield rt
    rt.close()


#: The console script of this environment (the one ``pip install`` made), as a user would run it.
CLI = str(Path(sys.executable).parent / "quietline")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _served(
    env: dict[str, str],
    *serve_args: str,
    cwd: Path | None = None,
    log: IO[bytes] | None = None,
    new_session: bool = False,
    start_seconds: float = 30.0,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``quietline serve`` in its own process on a free port with ``env`` (merged into this one's);
    yields its base URL and process once ``/healthz`` answers, and stops it afterwards."""
    port = free_port()
    out = log if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), *serve_args],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=out,
        stderr=out,
        start_new_session=new_session,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_seconds
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                said = Path(log.name).read_text(errors="replace") if log is not None else ""
                raise AssertionError(f"quietline serve did not start (exit code {proc.poll()}) {said}")
            time.sleep(0.05)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def serve_process() -> Callable[..., AbstractContextManager[tuple[str, subprocess.Popen[bytes]]]]:
    """Start a real ``quietline serve`` process: ``with serve_process(env, "--workers", "2") as
    (url, proc): …`` (tests of what only separate processes show: workers, crashes, the browser)."""
    return _served
