"""Take docs/inspector.png: `make demo`'s app behind `scf-asgi local`, a few requests, and the
invocation inspector in headless Chromium (run from the repository root with the dev venv:
.venv/bin/python docs/screenshot.py)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import Browser  # noqa: E402
from tests.local_emulator import Emulator  # noqa: E402


def main() -> None:
    bootstrap = ROOT / "examples" / "fastapi_app" / "bootstrap"
    emu = Emulator("--bootstrap", str(bootstrap), cwd=ROOT, PYTHON=sys.executable)
    try:
        with httpx.Client(base_url=emu.url, trust_env=False, timeout=30) as http:
            http.get("/release/")
            http.post("/release/api/items", json={"name": "widget", "price": 9.5})
            http.get("/release/visit", headers={"Cookie": "visits=2"})
            files = {"file": ("logo.png", bytes(range(256)), "image/png")}
            http.post("/release/upload", data={"name": "Zoë"}, files=files)
            http.get("/release/old-home")
            http.get("/release/missing")
        with tempfile.TemporaryDirectory() as profile:
            browser = Browser(Path(profile))
            try:
                browser.goto(emu.url + "/_scf/")
                browser.wait(
                    lambda: browser.evaluate("document.querySelectorAll('tbody tr').length") == 6
                )
                browser.click('#invocations tr[data-seq="2"]')
                browser.wait(lambda: "POST" in browser.text("#detail-event"))
                time.sleep(0.3)  # the detail's last paint
                browser.screenshot(ROOT / "docs" / "inspector.png")
            finally:
                browser.close()
    finally:
        emu.stop()


if __name__ == "__main__":
    main()
