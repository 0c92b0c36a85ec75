"""A real server (``quietline serve`` in its own process) and Debian's Chromium through Playwright."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


@dataclass(frozen=True)
class LiveServer:
    url: str
    database_url: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    serve_process: Callable[..., AbstractContextManager[tuple[str, Any]]],
) -> Iterator[LiveServer]:
    """One server per test module (tests use distinct numbers, so they do not see each other)."""
    import shutil

    tmp_path = tmp_path_factory.mktemp("live")
    db = tmp_path / "live.db"
    shutil.copyfile(sqlite_template, db)
    env = {
        **os.environ,
        "QUIETLINE_ENV": "development",
        "QUIETLINE_DATABASE_URL": f"sqlite:///{db}",
        "QUIETLINE_SECRET_KEY": "e2e-secret",
    }
    cli = Path(sys.executable).parent / "quietline"
    subprocess.run([str(cli), "demo", "load"], env=env, check=True, capture_output=True, timeout=120)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log, serve_process(env, log=log) as (url, _):
        yield LiveServer(url, env["QUIETLINE_DATABASE_URL"], env)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium per test module. Playwright's sync API keeps an asyncio loop running while it is
    open, so it must be closed before other modules' tests call ``asyncio.run``."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def issue_key(live_server: LiveServer) -> Callable[[str, str], str]:
    """Make an API key the way an operator does (``quietline keys create``); returns the key."""

    def make(role: str, subject: str) -> str:
        cli = Path(sys.executable).parent / "quietline"
        out = subprocess.run(
            [str(cli), "keys", "create", "--role", role, "--subject", subject, "--json"],
            env=live_server.env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        return str(json.loads(out.stdout)["key"])

    return make
