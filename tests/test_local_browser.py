"""The invocation inspector in a real headless Chromium (Debian's, driven by its ChromeDriver
through selenium): the page lists the invocations as they happen, shows one's exact event and
result with decoded bodies and the instance's output, and a replay appears as a new row."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.local_emulator import CHROMIUM, Emulator

CHROMEDRIVER = "/usr/bin/chromedriver"
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    "--window-size=1400,1000",
)

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER))
    and not os.environ.get("SCF_ASGI_REQUIRE_BROWSER"),
    reason=f"{CHROMIUM} or {CHROMEDRIVER} is absent (apt-get install chromium chromium-driver)",
)


def start_browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # The driver named: selenium never looks for (or downloads) one of its own.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)  # selenium's client and the browser talk over loopback
    driver = start_browser(tmp_path / "profile")
    yield driver
    driver.quit()


def rows(driver: Any) -> list[dict[str, str]]:
    """The list as the page shows it, read in one go (rows are redrawn as updates come)."""
    found: list[dict[str, str]] = driver.execute_script(
        """
        return Array.from(document.querySelectorAll("#invocations tbody tr")).map(function (r) {
          var cells = Array.from(r.children).map(function (c) { return c.innerText.trim(); });
          return {seq: r.getAttribute("data-seq"), source: r.getAttribute("data-source"),
                  request: cells[2], status: cells[3], start: cells[5], instance: cells[6]};
        });
        """
    )
    return found


def wait(driver: Any, condition: Any, timeout: float = 20) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda _: condition())


def text(driver: Any, selector: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, selector).text)


def click(driver: Any, selector: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, selector).click()


def test_the_inspector_lists_shows_and_replays_invocations(browser: Any) -> None:
    emu = Emulator("app:app")
    try:
        with httpx.Client(base_url=emu.url, trust_env=False, timeout=30) as http:
            http.get("/release/api/hello?who=first")
            http.post("/echo", content=bytes(range(200)), headers={"Content-Type": "image/png"})
            http.get("/nowhere")
            browser.get(emu.url + "/_scf/")
            wait(browser, lambda: len(rows(browser)) == 3)
            assert [(r["request"], r["status"], r["instance"]) for r in rows(browser)] == [
                ("GET /nowhere", "404", "1"),
                ("POST /echo", "200", "1"),
                ("GET /api/hello", "200", "1"),
            ]
            assert [r["start"] for r in rows(browser)] == ["warm", "warm", "cold"]

            # One invocation: the exact event and result, bodies decoded (binary as hex).
            click(browser, '#invocations tr[data-seq="2"]')
            wait(browser, lambda: '"httpMethod": "POST"' in text(browser, "#detail-event"))
            event = json.loads(text(browser, "#detail-event"))
            result = json.loads(text(browser, "#detail-result"))
            assert (event["path"], event["isBase64Encoded"]) == ("/echo", True)
            assert (result["statusCode"], result["isBase64Encoded"]) == (200, True)
            preview = bytes(range(64)).hex(" ") + " ..."
            assert text(browser, "#event-body") == (
                f"body, decoded (binary, 200 bytes, first bytes in hex)\n{preview}"
            )
            assert text(browser, "#result-body").endswith(preview)

            click(browser, '#invocations tr[data-seq="1"]')
            wait(browser, lambda: "hello first" in text(browser, "#result-body"))
            assert text(browser, "#result-body") == (
                'body, decoded (text, 46 bytes)\n{"message": "hello first from scf-asgi local"}'
            )
            assert "cold start" in text(browser, "#detail-meta")
            # The instance's output: what its initialisation printed (with its first invocation,
            # as on SCF), then its own access line.
            output = text(browser, "#output")
            assert output.startswith("APP MODULE LOADED\n")
            assert "GET /api/hello 200" in output

            # Live: a request made now shows up without reloading the page.
            http.get("/api/hello?who=live")
            wait(browser, lambda: len(rows(browser)) == 4)
            assert rows(browser)[0]["request"] == "GET /api/hello"

            # Replay the selected invocation: a new row, selected, with the same event.
            shown = text(browser, "#detail-event")
            click(browser, "#replay")
            wait(browser, lambda: len(rows(browser)) == 5)
            assert (rows(browser)[0]["source"], rows(browser)[0]["seq"]) == ("replay", "5")
            wait(browser, lambda: text(browser, "#detail-title").startswith("#5 "))
            assert text(browser, "#detail-event") == shown

            # Edit, then replay: the edited event runs.
            click(browser, "#edit")
            editor = browser.find_element("css selector", "#event-editor")
            edited = json.loads(editor.get_attribute("value"))
            edited["queryString"] = {"who": "edited"}
            editor.clear()
            editor.send_keys(json.dumps(edited))
            click(browser, "#send")
            wait(browser, lambda: len(rows(browser)) == 6)
            wait(browser, lambda: "hello edited" in text(browser, "#result-body"))
            assert rows(browser)[0]["source"] == "replay"
    finally:
        emu.stop()
