"""The site engines that render the catalog's shell: mkdocs-material (default) and Zensical.

An engine gets the shell's Markdown pages and one mkdocs.yml-style configuration (``shell``
writes both) and renders them with its theme; ModelKB does everything else. So an engine only
says how to run, where its search index lies and what one search entry looks like.

mkdocs-material is in maintenance and reaches end of life on 2027-05-05; Zensical, by the same
authors, reads mkdocs.yml and renders the same theme (docs/catalog.md, "Engines").
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any

from modelkb.errors import SiteEngineError, UnknownEngineError
from modelkb.extras import require

logger = logging.getLogger(__name__)

ENGINE_ENV = "MODELKB_ENGINE"
DEFAULT_ENGINE = "mkdocs"


@dataclass(frozen=True)
class Engine:
    """One way to render the shell.

    Attributes:
        name: What ``--engine`` and ``MODELKB_ENGINE`` take.
        packages: The distributions it needs (all in the ``site`` extra), first the engine's own.
        search_index: Its search index, relative to the site root.
        entries_key: The key of the index's list of entries.
    """

    name: str
    packages: tuple[str, ...]
    search_index: str
    entries_key: str

    def check_installed(self) -> None:
        """Raise :class:`MissingExtraError` (pip install 'modelkb[site]') if a package is missing."""
        for package in self.packages:
            require(_MODULES[package], "site")

    def versions(self) -> str:
        """The installed versions of its packages (part of the shell's cache key)."""
        return " ".join(f"{p}={metadata.version(p)}" for p in self.packages)

    def configure(self, config: dict[str, Any]) -> dict[str, Any]:
        """The configuration file this engine reads, from the shared one."""
        return config

    def search_entry(self, location: str, title: str, text: str) -> dict[str, Any]:
        """One entry of the search index, from plain text.

        mkdocs-material shows ``title`` and ``text`` as HTML: user text is escaped.
        """
        return {"location": location, "title": escape(title), "text": escape(text)}

    def run(self, config_path: Path) -> None:
        """Render the shell described by ``config_path`` (paths in it are relative to its folder)."""
        raise NotImplementedError


class MkdocsEngine(Engine):
    """mkdocs 1.x with mkdocs-material, run in this process."""

    def configure(self, config: dict[str, Any]) -> dict[str, Any]:
        # Project pages are reached from the projects index, not listed in the navigation.
        return {**config, "validation": {"nav": {"omitted_files": "info"}}}

    def run(self, config_path: Path) -> None:
        from mkdocs.commands.build import build
        from mkdocs.config import load_config
        from mkdocs.exceptions import MkDocsException

        # mkdocs-material announces its end of life on every build; keep our output readable.
        for name in ("mkdocs", "material"):
            logging.getLogger(name).setLevel(
                max(logging.getLogger(name).getEffectiveLevel(), logging.WARNING)
            )
        try:
            build(load_config(config_file=str(config_path)))
        except (MkDocsException, OSError) as err:
            raise SiteEngineError(self.name, str(err)) from err


class ZensicalEngine(Engine):
    """Zensical, run as ``python -m zensical build`` in a child process.

    A child process, because Zensical's Rust core prints to the terminal and reports a broken
    configuration by panicking (``pyo3_runtime.PanicException``, not an ``Exception``): both
    stay in the child, and its output becomes the error's message.
    """

    def configure(self, config: dict[str, Any]) -> dict[str, Any]:
        # The classic variant is mkdocs-material's look, which catalog.css was written against.
        theme = {**config["theme"], "variant": "classic"}
        return {**config, "theme": theme}

    def search_entry(self, location: str, title: str, text: str) -> dict[str, Any]:
        # Zensical's index escapes only & < > and its search box decodes only those back, then
        # shows the text as text (an escaped quote would show as "&quot;").
        return {
            "location": location,
            "level": 1,
            "title": escape(title, quote=False),
            "text": escape(text, quote=False),
            "path": [],
            "tags": [],
        }

    def run(self, config_path: Path) -> None:
        command = [sys.executable, "-m", "zensical", "build", "--clean", "-f", config_path.name]
        try:
            done = subprocess.run(
                command,
                cwd=config_path.parent,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise SiteEngineError(self.name, str(err)) from err
        logger.debug("zensical: %s%s", done.stdout, done.stderr)
        if done.returncode != 0:
            output = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise SiteEngineError(self.name, "\n".join(output[-5:]) or f"exit {done.returncode}")


_MODULES = {"mkdocs": "mkdocs", "mkdocs-material": "material", "zensical": "zensical"}

ENGINES: dict[str, Engine] = {
    "mkdocs": MkdocsEngine(
        "mkdocs", ("mkdocs", "mkdocs-material"), "search/search_index.json", "docs"
    ),
    "zensical": ZensicalEngine("zensical", ("zensical",), "search.json", "items"),
}


def engine_named(name: str | None = None) -> Engine:
    """The engine called ``name``, else ``$MODELKB_ENGINE``, else mkdocs-material.

    Raises:
        UnknownEngineError: No engine has that name (a ValueError).
    """
    chosen = name or os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    try:
        return ENGINES[chosen.strip().lower()]
    except KeyError:
        raise UnknownEngineError(chosen, sorted(ENGINES)) from None
