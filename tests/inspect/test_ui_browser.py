"""The `/ui` page in a real headless browser: Debian's chromium driven by Playwright (never its own
downloaded browsers). A gateway with keys, the SQLite store and the real echo backend; a thread of three
turns and a branch written through the openai SDK; the page loaded, the key pasted, the thread shown.

Set RGW_UI_SCREENSHOT=<path> to keep the screenshot there (`scripts/ui_screenshot.sh` writes docs/ui.png).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from tests.inspect.test_inspect import _settings, make_thread
from tests.support.echo_fixtures import EchoBackend
from tests.support.gateway import Gateway, run_gateway
from tests.support.tenants import KEY_A, auth_block

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PATIENCE_MS = 30_000  # the machine may be busy: waits are generous, never timing assertions
XSS = '<img src=x onerror="window.__xss = 1"><script>window.__xss = 2</script>'


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the /ui browser test needs Debian's chromium. `make test` installs it "
            "(as root, with apt-get); or run: apt-get install -y chromium"
        )
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860},
        )
        context.set_default_timeout(PATIENCE_MS)
        expect.set_options(timeout=PATIENCE_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def ui_gateway(echo: EchoBackend, tmp_path: Path) -> Iterator[Gateway]:
    store = {"store_backend": "sqlite", "sqlite": {"path": str(tmp_path / "responses.db")}}
    with run_gateway(_settings(echo.base_url, store, auth=auth_block())) as gw:
        yield gw


def _turns(page: Page) -> list[tuple[str, str, str]]:
    cards = page.locator("[data-testid=turn]")
    return [
        (
            c.get_attribute("data-id") or "",
            c.get_attribute("data-level") or "",
            c.get_attribute("data-branch") or "",
        )
        for c in cards.all()
    ]


def test_ui_shows_a_thread_with_its_branch_in_a_real_browser(
    browser: BrowserContext, ui_gateway: Gateway, tmp_path: Path
) -> None:
    client = openai.OpenAI(base_url=ui_gateway.base_url, api_key=KEY_A, max_retries=0)
    ids = make_thread(client)
    hostile = client.responses.create(model="echo", input=XSS, previous_response_id=ids["side"]).id
    errors: list[str] = []
    page = browser.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    page.goto(f"{ui_gateway.root_url}/ui")
    expect(page.locator("h1")).to_contain_text("responses-gateway")
    expect(page.locator("#message")).to_contain_text("needs an API key")  # /ui/api answered 401
    page.fill("#key", KEY_A)
    page.click("#key-form button")
    expect(page.locator("#who")).to_have_text('tenant: "team-a"')
    expect(page.locator("#health")).to_contain_text("sqlite")
    expect(page.locator("#recent [data-testid=recent-link]")).to_have_count(5)

    page.locator(f"#recent a[href='#{ids['third']}']").click()
    expect(page.locator("[data-testid=turn]")).to_have_count(5)
    turns = _turns(page)
    # the chain of 3 turns, in order, on the spine (level 0)
    assert [t for t in turns if t[1] == "0"] == [
        (ids["root"], "0", "false"),
        (ids["second"], "0", "false"),
        (ids["third"], "0", "false"),
    ]
    # the branch from the root hangs one level in, right after the root, and says so
    assert turns[1] == (ids["side"], "1", "true") and turns[2] == (hostile, "1", "false")
    side = page.locator(f"[data-testid=turn][data-id='{ids['side']}']")
    expect(side.locator(".badge.branch")).to_have_text(f"branch from {ids['root']}")
    root_box = page.locator(f"[data-testid=turn][data-id='{ids['root']}']").bounding_box()
    side_box = side.bounding_box()
    assert root_box is not None and side_box is not None and side_box["x"] > root_box["x"] + 10
    third = page.locator(f"[data-testid=turn][data-id='{ids['third']}']")
    expect(third).to_have_class("turn on-path selected")
    expect(third.locator(".item.input pre")).to_have_text("third turn")
    expect(third.locator(".item.output pre")).not_to_be_empty()

    shot = tmp_path / "ui.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("RGW_UI_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["RGW_UI_SCREENSHOT"])

    # response content is shown as text, never run or parsed as HTML
    page.fill("#lookup-id", hostile)
    page.click("#lookup button")
    hostile_card = page.locator(f"[data-testid=turn][data-id='{hostile}']")
    expect(hostile_card.locator(".item.input pre")).to_have_text(XSS)
    assert page.locator("#chain img, #chain script").count() == 0
    assert page.evaluate("window.__xss") is None
    assert errors == []
