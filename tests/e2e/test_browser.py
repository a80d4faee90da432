"""The web UI in a real browser (Debian's chromium through Playwright) against the real app
served over HTTP on 127.0.0.1: forced password change, home, audit trail, Chinese UI."""
from __future__ import annotations

import re
import secrets
import shutil
import threading

import pytest
from werkzeug.serving import make_server

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
NEW_PASSWORD = "spring meadow lantern 7"


@pytest.fixture
def backend():
    """SQLite only: the browser tests are about the UI, the database suites cover both."""
    return "sqlite"


@pytest.fixture
def app_config(app_config):
    # as in production: errors become pages, and a real secret key signs the session
    return {**app_config, "TESTING": False, "APP_SECRET_KEY": secrets.token_hex(32)}


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def page():
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                             headless=True)
        context = browser.new_context(locale="en-US", viewport={"width": 1360, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


def sign_in(page, user, screenshot=None) -> None:
    page.fill("#username", user.username)
    page.fill("#password", user.password)
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)
    page.click("button.button-primary")


def test_first_sign_in_audit_trail_and_chinese(app, live_server, page, make_user, tmp_path):
    from playwright.sync_api import expect

    from qms.jobs import write_scheduled_checkpoint

    user = make_user("qa.lee", "qa_reviewer", full_name="Lee Quality", temporary=True)
    page.goto(live_server + "/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    sign_in(page, user, screenshot=tmp_path / "1-login.png")

    expect(page).to_have_url(live_server + "/password")
    expect(page.locator(".alert-warning").first).to_contain_text("temporary")
    page.goto(live_server + "/audit")  # nothing else is reachable yet
    expect(page).to_have_url(live_server + "/password")
    page.fill("#current_password", user.password)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm_password", NEW_PASSWORD)
    page.screenshot(path=tmp_path / "2-change-password.png", full_page=True)
    page.click("button.button-primary")

    expect(page).to_have_url(live_server + "/")
    expect(page.locator("h1")).to_have_text("Welcome, Lee Quality")
    page.screenshot(path=tmp_path / "3-home.png", full_page=True)

    page.click("nav.mainnav >> text=Audit trail")
    expect(page).to_have_url(live_server + "/audit")
    expect(page.locator("#chain-status")).to_contain_text("has not been verified yet")
    page.click("text=Verify now")
    # no checkpoint yet: nothing vouches for the chain
    expect(page.locator("#chain-status")).to_contain_text("Audit chain UNANCHORED")
    expect(page.locator("#chain-verified-at")).to_contain_text("asked for by qa.lee")
    page.screenshot(path=tmp_path / "4-audit-unanchored.png", full_page=True)
    write_scheduled_checkpoint(app)  # what the scheduler does, as `qms init` did at start
    page.click("text=Verify now")
    expect(page.locator("#chain-status")).to_contain_text("Audit chain intact")
    actions = page.locator("code.action")
    expect(actions.filter(has_text="identity.login.succeeded")).to_have_count(1)
    expect(actions.filter(has_text="identity.password.changed")).to_have_count(1)
    expect(actions.filter(has_text="audit.checkpoint.signed")).to_have_count(1)
    page.screenshot(path=tmp_path / "4-audit.png", full_page=True)

    page.fill("#actor", user.username)
    page.fill("#action", "identity.login")
    page.click("text=Apply filters")
    expect(page).to_have_url(re.compile(r"actor=qa\.lee"))
    expect(actions.filter(has_text="identity.password.changed")).to_have_count(0)

    page.click("button[value=zh_Hans_CN]")
    expect(page.locator("h1")).to_have_text("审计追踪")
    expect(page.locator("#chain-status")).to_contain_text("审计链完整")
    expect(page).to_have_url(re.compile(r"/audit\?.*actor=qa\.lee"))  # the filters stay
    page.screenshot(path=tmp_path / "5-audit-zh.png", full_page=True)

    assert (tmp_path / "5-audit-zh.png").stat().st_size > 10_000


def test_api_docs_work_offline(live_server, page, make_user, tmp_path):
    from playwright.sync_api import expect

    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(live_server + "/login")
    sign_in(page, make_user("aud.chen", "auditor"))
    page.click("nav.mainnav >> text=API reference")
    expect(page.locator("#schema-VerifyReport")).to_be_visible()
    expect(page.locator(".operation").first).to_contain_text("Permission")
    page.screenshot(path=tmp_path / "api-docs.png")
    assert all(url.startswith(live_server) for url in requested)  # no CDN, no fonts, nothing


def test_signing_out_ends_the_session(live_server, page, make_user):
    from playwright.sync_api import expect

    user = make_user("insp.wu", "inspector", full_name="Wu Inspector")
    page.goto(live_server + "/login")
    sign_in(page, user)
    expect(page.locator("h1")).to_have_text("Welcome, Wu Inspector")
    expect(page.locator("nav.mainnav")).not_to_contain_text("Audit trail")  # no audit.read
    page.click("text=Sign out")
    expect(page).to_have_url(live_server + "/login")
    page.goto(live_server + "/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
