"""Browser tests: Debian's Chromium driven by Playwright against the session's local cloud (tests/conftest.py).

Screenshots go to tests/browser/artifacts/ (ignored by git). With UPDATE_DOCS_SCREENSHOTS=1 the queue and case
screenshots are also written to docs/ for the README.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from localcloud import cpu
from tests.flow.conftest import Platform

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: install Debian's chromium package (see README)")
    from playwright.sync_api import expect, sync_playwright

    # A busy machine (the in-process cloud runs one Lambda invocation at a time) can take seconds per answer.
    expect.set_options(timeout=15_000)
    with cpu.all_cpus():  # the driver and the browser it starts run on any CPU, not the local cloud's one
        playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        yield launched
        launched.close()
    finally:
        playwright.stop()


@pytest.fixture
def platform(cloud):
    return Platform(cloud)


@pytest.fixture
def new_page(browser):
    """Pages in fresh browser contexts (each its own session storage: one signed-in person each)."""
    contexts = []

    def make(locale: str = "en-US", refresh_ms: int | None = None):
        context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 720})
        context.set_default_timeout(15_000)
        if refresh_ms:  # the queue's refresh period (5 s by default)
            context.add_init_script(f"localStorage.setItem('console.refreshMs', '{int(refresh_ms)}')")
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        shutil.copyfile(path, DOCS / f"review-console-{name}.png")
    return path
