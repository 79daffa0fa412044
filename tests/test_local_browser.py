"""The invocation inspector in a real headless Chromium (Debian's, driven over the DevTools
protocol): the page lists the invocations as they happen, shows one's exact event and result
with decoded bodies and the instance's output, and a replay appears as a new row."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import CHROMIUM, Browser
from tests.local_emulator import Emulator

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("SCF_ASGI_REQUIRE_BROWSER"),
    reason=f"{CHROMIUM} is absent (apt-get install chromium)",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chromium = Browser(tmp_path / "profile")
    yield chromium
    chromium.close()


def rows(browser: Browser) -> list[dict[str, str]]:
    """The list as the page shows it, read in one go (rows are redrawn as updates come)."""
    found: list[dict[str, str]] = browser.evaluate(
        """
        Array.from(document.querySelectorAll("#invocations tbody tr")).map(function (r) {
          var cells = Array.from(r.children).map(function (c) { return c.innerText.trim(); });
          return {seq: r.getAttribute("data-seq"), source: r.getAttribute("data-source"),
                  request: cells[2], status: cells[3], start: cells[5], instance: cells[6]};
        })
        """
    )
    return found


def newest(browser: Browser) -> tuple[str, str] | None:
    """(seq, status) of the list's first row, None while it is empty."""
    listed = rows(browser)
    return (listed[0]["seq"], listed[0]["status"]) if listed else None


def test_the_inspector_lists_shows_and_replays_invocations(browser: Browser) -> None:
    emu = Emulator("app:app")
    try:
        with httpx.Client(base_url=emu.url, trust_env=False, timeout=30) as http:
            http.get("/release/api/hello?who=first")
            http.post("/echo", content=bytes(range(200)), headers={"Content-Type": "image/png"})
            http.get("/nowhere")
            browser.goto(emu.url + "/_scf/")
            browser.wait(lambda: len(rows(browser)) == 3)
            assert [(r["request"], r["status"], r["instance"]) for r in rows(browser)] == [
                ("GET /nowhere", "404", "1"),
                ("POST /echo", "200", "1"),
                ("GET /api/hello", "200", "1"),
            ]
            assert [r["start"] for r in rows(browser)] == ["warm", "warm", "cold"]

            # One invocation: the exact event and result, bodies decoded (binary as hex).
            browser.click('#invocations tr[data-seq="2"]')
            browser.wait(lambda: '"httpMethod": "POST"' in browser.text("#detail-event"))
            event = json.loads(browser.text("#detail-event"))
            result = json.loads(browser.text("#detail-result"))
            assert (event["path"], event["isBase64Encoded"]) == ("/echo", True)
            assert (result["statusCode"], result["isBase64Encoded"]) == (200, True)
            preview = bytes(range(64)).hex(" ") + " ..."
            assert browser.text("#event-body") == (
                f"body, decoded (binary, 200 bytes, first bytes in hex)\n{preview}"
            )
            assert browser.text("#result-body").endswith(preview)

            browser.click('#invocations tr[data-seq="1"]')
            browser.wait(lambda: "hello first" in browser.text("#result-body"))
            assert browser.text("#result-body") == (
                'body, decoded (text, 46 bytes)\n{"message": "hello first from scf-asgi local"}'
            )
            assert "cold start" in browser.text("#detail-meta")
            # The instance's output: what its initialisation printed (with its first invocation,
            # as on SCF), then its own access line.
            output = browser.text("#output")
            assert output.startswith("APP MODULE LOADED\n")
            assert "GET /api/hello 200" in output

            # Live: a request made now shows up without reloading the page.
            http.get("/api/hello?who=live")
            browser.wait(lambda: len(rows(browser)) == 4)
            assert rows(browser)[0]["request"] == "GET /api/hello"

            # Replay the selected invocation: a new row, selected, with the same event.
            shown = browser.text("#detail-event")
            browser.click("#replay")
            browser.wait(lambda: len(rows(browser)) == 5)
            assert (rows(browser)[0]["source"], rows(browser)[0]["seq"]) == ("replay", "5")
            browser.wait(lambda: browser.text("#detail-title").startswith("#5 "))
            assert browser.text("#detail-event") == shown

            # Edit, then replay: the edited event runs.
            browser.click("#edit")
            browser.wait(lambda: browser.evaluate("!document.getElementById('editor').hidden"))
            edited = json.loads(browser.evaluate("document.getElementById('event-editor').value"))
            edited["queryString"] = {"who": "edited"}
            browser.replace_text("#event-editor", json.dumps(edited))
            browser.click("#send")
            browser.wait(lambda: len(rows(browser)) == 6)
            browser.wait(lambda: "hello edited" in browser.text("#result-body"))
            assert rows(browser)[0]["source"] == "replay"
    finally:
        emu.stop()


def test_edit_and_replay_starts_from_the_whole_event_however_large(browser: Browser) -> None:
    # The detail shows at most 256 KB of an event; the editor gets all of it.
    text = "".join(f"line {n:06d} of a large text body\n" for n in range(10_000))  # 330 KB
    emu = Emulator("app:app")
    try:
        with httpx.Client(base_url=emu.url, trust_env=False, timeout=30) as http:
            http.post("/echo", content=text, headers={"Content-Type": "text/plain"})
            browser.goto(emu.url + "/_scf/")
            browser.wait(lambda: len(rows(browser)) == 1)
            browser.click('#invocations tr[data-seq="1"]')
            browser.wait(lambda: "more characters not shown" in browser.text("#detail-event"))
            browser.click("#edit")
            browser.wait(lambda: browser.evaluate("!document.getElementById('editor').hidden"))
            editor = "document.getElementById('event-editor').value"
            browser.wait(lambda: browser.evaluate(editor) != "")
            edited = json.loads(browser.evaluate(editor))
            assert edited == json.loads(http.get("/_scf/api/invocations/1/event").content)
            assert edited["body"] == text
            edited["body"] = text.upper()
            browser.replace_text("#event-editor", json.dumps(edited))
            browser.click("#send")
            # the replay's row, answered (the first row is #1 until it comes); a 330 KB event
            # typed into the page and run again takes a while on a busy machine
            browser.wait(lambda: newest(browser) == ("2", "200"), timeout=60)
            sent = json.loads(http.get("/_scf/api/invocations/2/event").content)
            summary = http.get("/_scf/api/invocations").json()[0]
    finally:
        emu.stop()
    assert sent == edited, emu.output  # the edited event, whole, ran
    assert (summary["seq"], summary["source"], summary["status"]) == (2, "replay", 200)
