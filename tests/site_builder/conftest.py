"""Fixtures for the catalog tests: the test store built into a site once, served, and Chromium.

The store is described in :mod:`support.catalog_site`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from support.browser import CHROMIUM, CHROMIUM_ARGS, PageWatch
from support.catalog_site import SiteInfo, build_store

from modelkb.store import Store


@pytest.fixture(scope="session")
def catalog_store(tmp_path_factory: pytest.TempPathFactory) -> SiteInfo:
    """A store with real and synthetic runs (written once per session; no site yet)."""
    return build_store(tmp_path_factory.mktemp("catalog"))


@pytest.fixture(scope="session", params=["mkdocs", "zensical"])
def engine(request: pytest.FixtureRequest) -> str:
    """The site engine a test's catalog is built with: every test using it runs once per engine
    (pytest runs all of one engine's tests before the other's, so each module-scoped site built
    with it is built once per engine)."""
    if request.param == "zensical":
        pytest.importorskip("zensical", reason="Zensical is not installed (modelkb[site])")
    return request.param


@pytest.fixture(scope="session")
def site_info(engine: str, catalog_store: SiteInfo) -> SiteInfo:
    """The store built into a site once per session by each engine (tests using it run twice)."""
    from modelkb.site_builder.build import build_site

    out = catalog_store.out.with_name(f"site-{engine}")
    info = dataclasses.replace(catalog_store, out=out, engine=engine)
    build_site(Store(info.store), info.out, engine=engine)
    return info


@pytest.fixture(scope="session")
def site_url(site_info: SiteInfo) -> Iterator[str]:
    from modelkb.site_builder.serve import serve_in_thread

    server, url = serve_in_thread(site_info.out)
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, site_url: str) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    pg = context.new_page()
    pg.watch = PageWatch(pg, site_url.rstrip("/"))
    yield pg
    context.close()
