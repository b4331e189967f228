"""The catalog's "shell": a few pages built by the site engine, filled in by ModelKB afterwards.

The engine (mkdocs-material or Zensical, see ``engines``) renders only the dashboard, the projects
index, one page per project, the compare and about pages, and one hidden template page. Each holds
an empty slot (and, for per-item pages, a title token); ModelKB later replaces the slot with
Jinja-rendered HTML. The template page is split around its slot into the *chrome* (header and
footer strings) that wraps every experiment page.

Measured (docs/catalog.md): mkdocs cannot render 10,000 pages in minutes, Jinja does it in
seconds. Keeping the engine to the shell also keeps it replaceable: the same pages and the same
configuration go to either engine, and only ``engines`` knows how each one runs.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from modelkb.errors import SiteEngineError
from modelkb.site_builder.engines import Engine

SLOT = '<div id="mkb-slot"></div>'
TITLE_TOKEN = "MKBTITLETOKEN"
CHROME_PAGE = "experiments/shell"
DOCS_DIR, SHELL_DIR = "docs", "shell"  # in the build's work folder, beside mkdocs.yml
SITE_NAME = "ModelKB catalog"


@dataclass(frozen=True)
class ShellPage:
    """One page the engine renders: where its Markdown goes and its title (maybe the token)."""

    path: str  # relative to docs_dir, e.g. "projects/digits-cnn.md"
    title: str
    hide_toc: bool = True

    def markdown(self) -> str:
        front = {"title": self.title, "hide": ["toc"] if self.hide_toc else []}
        return "---\n" + yaml.safe_dump(front, sort_keys=True) + "---\n\n" + SLOT + "\n"

    @property
    def url(self) -> str:
        """The built page's folder, relative to the site root ("" for the dashboard)."""
        stem = self.path[: -len(".md")]
        if stem == "index":
            return ""
        return (stem.removesuffix("/index")) + "/"


def shell_pages(project_slugs: list[str]) -> list[ShellPage]:
    """Every page of the shell: fixed pages, one per project, and the chrome template."""
    pages = [
        ShellPage("index.md", "Dashboard"),
        ShellPage("projects/index.md", "Projects"),
        ShellPage("compare.md", "Compare experiments"),
        ShellPage("about.md", "About this catalog"),
        ShellPage(CHROME_PAGE + ".md", TITLE_TOKEN),
    ]
    pages.extend(ShellPage(f"projects/{slug}.md", TITLE_TOKEN) for slug in project_slugs)
    return pages


def site_sources() -> Path:
    """The catalog's own front-end sources (``modelkb/site``)."""
    return Path(str(resources.files("modelkb.site")))


def shell_config(engine: Engine) -> dict:
    """The engine's configuration: ``site/mkdocs.yml`` plus paths and the (short) navigation.

    ``docs_dir`` and ``site_dir`` are relative to the configuration file's folder (Zensical
    requires both inside it).
    """
    base = yaml.safe_load((site_sources() / "mkdocs.yml").read_text(encoding="utf-8"))
    base["docs_dir"] = DOCS_DIR
    base["site_dir"] = SHELL_DIR
    base["theme"]["custom_dir"] = str(site_sources() / "overrides")
    base["nav"] = [
        {"Dashboard": "index.md"},
        {"Projects": "projects/index.md"},
        {"Compare": "compare.md"},
        {"About": "about.md"},
    ]
    return engine.configure(base)


def _front_end_files() -> list[tuple[str, Path]]:
    """``(docs path, source)`` of the catalog's JS and CSS."""
    root = site_sources()
    files = []
    for folder in ("js", "css"):
        for path in sorted((root / folder).glob("*")):
            if path.is_file():
                files.append((f"assets/modelkb/{folder}/{path.name}", path))
    return files


def _fingerprint(pages: list[ShellPage], config: dict, engine: Engine) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(config, sort_keys=True).encode())
    for page in pages:
        digest.update(page.path.encode() + b"\0" + page.markdown().encode())
    for rel, source in _front_end_files():
        digest.update(rel.encode() + b"\0" + source.read_bytes())
    overrides = site_sources() / "overrides"
    for path in sorted(overrides.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    digest.update(f"{engine.name} {engine.versions()}".encode())
    return digest.hexdigest()


def build_shell(work_dir: Path, project_slugs: list[str], engine: Engine) -> tuple[Path, bool]:
    """Build the shell with ``engine`` into ``<work_dir>/shell`` unless nothing it depends on
    changed.

    Args:
        work_dir: The build's private folder (kept between builds).
        project_slugs: One shell page per project.
        engine: The site engine.

    Returns:
        The built shell folder and whether the engine ran.

    Raises:
        MissingExtraError: The engine is not installed (``pip install 'modelkb[site]'``).
        SiteEngineError: The engine failed.
    """
    engine.check_installed()
    docs_dir, site_dir = work_dir / DOCS_DIR, work_dir / SHELL_DIR
    pages = shell_pages(project_slugs)
    config = shell_config(engine)
    fingerprint = _fingerprint(pages, config, engine)
    stamp = work_dir / "shell.sha256"
    if stamp.is_file() and stamp.read_text() == fingerprint and (site_dir / "index.html").is_file():
        return site_dir, False
    for folder in (docs_dir, site_dir):
        if folder.exists():
            shutil.rmtree(folder)
    for page in pages:
        target = docs_dir / page.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page.markdown(), encoding="utf-8")
    for rel, source in _front_end_files():
        target = docs_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    config_path = work_dir / "mkdocs.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    stamp.unlink(missing_ok=True)
    engine.run(config_path)
    if not (site_dir / "index.html").is_file():
        raise SiteEngineError(engine.name, f"it wrote no {site_dir / 'index.html'}")
    stamp.write_text(fingerprint)
    return site_dir, True


@dataclass(frozen=True)
class Chrome:
    """The page chrome of the experiment pages: everything around the slot."""

    header: str
    footer: str

    @classmethod
    def from_shell(cls, shell_dir: Path, engine: str) -> Chrome:
        """Split the shell's template page, which ``engine`` (its name) rendered."""
        html = (shell_dir / CHROME_PAGE / "index.html").read_text(encoding="utf-8")
        if html.count(SLOT) != 1:
            raise SiteEngineError(
                engine, f"its page {CHROME_PAGE}/ has {html.count(SLOT)} slots, expected 1"
            )
        header, footer = html.split(SLOT)
        return cls(_squeeze(header), _squeeze(footer))

    @property
    def sha(self) -> str:
        return hashlib.sha256((self.header + SLOT + self.footer).encode()).hexdigest()[:16]

    def wrap(self, body: str, title_html: str) -> str:
        """A whole page: ``title_html`` must already be HTML-escaped."""
        return (
            self.header.replace(TITLE_TOKEN, title_html)
            + body
            + self.footer.replace(TITLE_TOKEN, title_html)
        )


def _squeeze(html: str) -> str:
    """Drop blank lines and indentation (a good part of every experiment page; a newline stays,
    so whitespace between inline elements survives). Left alone if it holds ``<pre>``/``<textarea>``."""
    if "<pre" in html or "<textarea" in html:
        return html
    return _BLANK_OR_INDENT.sub("", html)


_BLANK_OR_INDENT = re.compile(r"\n[ \t]*(?=\n)|(?<=\n)[ \t]+")


def fill(page_html: str, body: str, title_html: str | None = None) -> str:
    """Put ``body`` into a shell page's slot (and an escaped title in place of the token)."""
    if title_html is not None:
        page_html = page_html.replace(TITLE_TOKEN, title_html)
    return page_html.replace(SLOT, body, 1)
