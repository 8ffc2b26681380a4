"""Browser tests of the portal: Playwright driving Debian's Chromium, axe-core in the page.

What they need, and what happens without it (the test is skipped, saying what to install —
``make test`` passes on a machine without a browser; ``.ci/run`` installs both):

* Chromium at ``/usr/bin/chromium`` (``apt-get install chromium``) or ``SHAREHUB_CHROMIUM``;
  Playwright cannot download its own browsers here, so it is launched with that executable;
* the ``playwright`` Python package (the ``dev`` extra);
* axe-core in ``tests/browser/node_modules`` (``npm ci --prefix tests/browser``).

Fixtures: ``live`` (a module's hub — the sample hub of ``tests/catalog/api_hub.py`` with the
portal — served by uvicorn in a thread on a free port), ``browser`` (one headless Chromium per
session), ``page`` (a fresh context per test, zh-CN). Helpers: :func:`sign_in` and
:func:`check_accessibility` (fails on every serious or critical axe violation).

To add a journey: a ``test_*.py`` module here marked ``pytestmark = pytest.mark.browser``, taking
``live`` and ``page``; sign in with ``sign_in(page, live, "scj_pub")`` (accounts:
``tests/catalog/portal/conftest.py::PORTAL_STAFF``), drive the pages with Playwright's locators,
and call ``check_accessibility(page)`` on each new page it reaches.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from catalog.access import staff
from tests.catalog.api_hub import PASSWORD, ApiHub, build_hub
from tests.catalog.portal.conftest import PORTAL_STAFF

HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"


def chromium_path() -> str | None:
    found = os.environ.get("SHAREHUB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return found if found and Path(found).exists() else None


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if chromium_path() is None:
        return "no Chromium: apt-get install chromium (or set SHAREHUB_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no playwright: pip install -e '.[dev]'"
    if not AXE.exists():
        return "no axe-core: npm ci --prefix tests/browser"
    return None


@dataclass
class Live:
    """A hub served over HTTP for the browser."""

    url: str
    hub: ApiHub


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread (on ``port``, or a free one); yield its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the portal did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    hub = build_hub(tmp_path_factory.mktemp("live"), portal=True)
    for url in serve(hub.client.app):
        yield Live(url=url, hub=hub)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        b = p.chromium.launch(executable_path=chromium_path(), headless=True, args=args)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        locale="zh-CN", accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    p = context.new_page()
    p.set_default_timeout(10_000)
    try:
        yield p
    finally:
        context.close()


def ensure_account(hub: ApiHub, username: str) -> None:
    if staff.get_staff(hub.engine, username) is None:
        dept, roles = PORTAL_STAFF[username]
        staff.create_staff(hub.engine, username, dept, roles, PASSWORD)


def sign_in(page: Any, live: Live, username: str) -> None:
    """Sign in through the form, as a person would."""
    ensure_account(live.hub, username)
    page.goto(f"{live.url}/portal/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live.url}/portal/")
    assert username in page.locator("header").inner_text()


def check_accessibility(page: Any) -> None:
    """axe-core (WCAG 2 A and AA rules) in the page: no serious or critical violation."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"],
    )
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, (
        "\n".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}" for v in bad
        )
        + f"\non {page.url}"
    )
