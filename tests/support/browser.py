"""Headless Chromium for the catalog tests: launch options, a page watcher, a served page, and
where screenshots go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS_ENV = "MODELKB_SCREENSHOTS"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"  # gitignored
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class PageWatch:
    """Everything a page did that a test must check: console errors, foreign requests, dialogs."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.dialogs: list[str] = []
        page.on(
            "console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None
        )
        page.on("pageerror", lambda err: self.errors.append(str(err)))
        page.on(
            "request",
            lambda req: (
                None
                if req.url.startswith((origin, "data:", "blob:"))
                else self.foreign.append(req.url)
            ),
        )

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)

    def assert_clean(self) -> None:
        assert self.foreign == [], f"requests left the site's origin: {self.foreign}"
        assert self.errors == [], f"console errors: {self.errors}"
        assert self.dialogs == [], f"dialogs opened (script ran?): {self.dialogs}"


@contextmanager
def served_page(
    browser: Any, site: Path, path: str, *, viewport: dict[str, int] | None = None
) -> Iterator[Any]:
    """``path`` of the built ``site``, served on 127.0.0.1, in a fresh browser context (of that
    ``viewport``, else Playwright's 1280x720); the page must stay clean (``PageWatch``) to the end
    of the block."""
    from modelkb.site_builder.serve import serve_in_thread

    server, url = serve_in_thread(site)
    context = browser.new_context(**({} if viewport is None else {"viewport": viewport}))
    try:
        page = context.new_page()
        page.watch = PageWatch(page, url.rstrip("/"))
        page.goto(url + path)
        yield page
        page.watch.assert_clean()
    finally:
        context.close()
        server.shutdown()
        server.server_close()


def save_screenshot(target: Any, name: str, engine: str, *, full_page: bool = False) -> Path:
    """Screenshot ``target`` (a page or a locator) as ``<name>-<engine>.png`` in
    ``$MODELKB_SCREENSHOTS``, else ``<repo>/test-artifacts/screenshots`` (kept out of git);
    returns the file. ``full_page`` applies to pages only."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{engine}.png"
    target.screenshot(path=str(path), **({"full_page": True} if full_page else {}))
    return path
