"""Copy the catalog's third-party front-end code into a built site, once.

* **Netron** comes from the ``netron`` PyPI package (its whole web app sits in the package
  folder). It is copied to ``vendor/netron/`` and made offline-safe: the build date is dropped
  (else Netron nags to update after 180 days), the version is set to ``0.0.0`` (Netron only sends
  telemetry from "packaged" versions) and a small ``modelkb-embed.js`` records cookie consent
  before Netron starts (else it asks ipinfo.io where the visitor is).
* **onnxruntime-web** (the single-threaded-capable SIMD wasm build only) is put under
  ``site/vendor/onnxruntime-web/`` by ``scripts/fetch-onnxruntime-web.sh`` before the package is
  built, so it ships in the wheel, and is copied to ``vendor/onnxruntime-web/``. Without it the
  catalog still builds; its try-the-model pages then cannot run a model, and the build says so.
* **Apache ECharts** (``dist/echarts.min.js``, for the project pages' plots) is fetched the same
  way by ``scripts/fetch-echarts.sh`` into ``site/vendor/echarts/``; without it the project pages
  show no plots, and the build says so.

Nothing is fetched at build time. Files are hard-linked when the output is on the same
filesystem, so a 10,000-experiment rebuild does not copy megabytes again.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
from importlib import resources
from pathlib import Path

from modelkb.extras import require

logger = logging.getLogger(__name__)

NETRON_SKIP = re.compile(r"(\.py|\.pyc)$|^__pycache__$")
NETRON_EMBED_JS = """// Added by ModelKB: the catalog is offline, so record consent before Netron asks a geo-IP service.
document.cookie = 'consent=' + Date.now() + '; path=/; max-age=2592000; SameSite=Strict';
"""
STAMP_FILE = ".modelkb-vendor"


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (replacing it), falling back to a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _copy_tree(source: Path, target: Path, *, skip: re.Pattern[str] | None = None) -> int:
    count = 0
    for root, dirs, files in os.walk(source):
        if skip is not None:
            dirs[:] = [d for d in dirs if not skip.search(d)]
        rel = Path(root).relative_to(source)
        for name in files:
            if skip is not None and skip.search(name):
                continue
            link_or_copy(Path(root) / name, target / rel / name)
            count += 1
    return count


def netron_source() -> Path:
    """The folder of the installed ``netron`` package (extra ``[site]``)."""
    spec = importlib.util.find_spec("netron")
    if spec is None or spec.origin is None:
        require("netron", "site")  # raises MissingExtraError with the install line
    return Path(spec.origin).parent  # type: ignore[union-attr,arg-type]


def patch_netron_index(html: str) -> str:
    """Make Netron's ``index.html`` offline-safe (see the module docstring)."""
    html = re.sub(r'\s*<meta name="date" content="[^"]*">', "", html)
    html = re.sub(
        r'<meta name="version" content="[^"]*">', '<meta name="version" content="0.0.0">', html
    )
    marker = '<script type="text/javascript" src="index.js"></script>'
    if marker not in html:
        raise RuntimeError("unexpected Netron index.html: cannot find its index.js script tag")
    return html.replace(
        marker, '<script type="text/javascript" src="modelkb-embed.js"></script>\n' + marker
    )


def install_netron(site_dir: Path) -> Path:
    """Copy Netron into ``<site>/vendor/netron`` unless the same version is already there."""
    source = netron_source()
    target = site_dir / "vendor" / "netron"
    stamp = f"netron {source.stat().st_mtime_ns} {(source / 'index.html').stat().st_size}"
    if (target / STAMP_FILE).is_file() and (target / STAMP_FILE).read_text() == stamp:
        return target
    if target.exists():
        shutil.rmtree(target)
    count = _copy_tree(source, target, skip=NETRON_SKIP)
    index = target / "index.html"
    patched = patch_netron_index((source / "index.html").read_text(encoding="utf-8"))
    index.unlink()  # a hard link: never write through it into site-packages
    index.write_text(patched, encoding="utf-8")
    (target / "modelkb-embed.js").write_text(NETRON_EMBED_JS, encoding="utf-8")
    (target / STAMP_FILE).write_text(stamp)
    logger.info("copied Netron (%d files) to %s", count, target)
    return target


def vendored_dir() -> Path:
    """``modelkb/site/vendor`` (onnxruntime-web and other npm code committed with the catalog)."""
    return Path(str(resources.files("modelkb.site") / "vendor"))


ONNXRUNTIME_WEB_FILES = (
    "ort.wasm.min.js",
    "ort-wasm-simd-threaded.mjs",
    "ort-wasm-simd-threaded.wasm",
)
ECHARTS_FILE = "echarts.min.js"


def echarts_installed() -> bool:
    """Whether ECharts (``scripts/fetch-echarts.sh``) was installed with ModelKB."""
    return (vendored_dir() / "echarts" / ECHARTS_FILE).is_file()


def install_vendor(site_dir: Path) -> list[str]:
    """Copy ``site/vendor/*`` (onnxruntime-web, ECharts) into ``<site>/vendor``.

    Returns:
        Notices for the user: what is missing and what that disables.
    """
    source = vendored_dir()
    notices: list[str] = []
    missing = [
        name for name in ONNXRUNTIME_WEB_FILES if not (source / "onnxruntime-web" / name).is_file()
    ]
    if missing:
        notices.append(
            f"onnxruntime-web is not installed ({', '.join(missing)} missing): the try-the-model pages "
            "cannot run models. Run scripts/fetch-onnxruntime-web.sh, then reinstall ModelKB."
        )
    if not echarts_installed():
        notices.append(
            f"ECharts is not installed ({ECHARTS_FILE} missing): the project pages show no plots. "
            "Run scripts/fetch-echarts.sh, then reinstall ModelKB."
        )
    if not source.is_dir():
        return notices
    for entry in sorted(source.iterdir()):
        if entry.is_dir():
            target = site_dir / "vendor" / entry.name
            stamp = " ".join(
                f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                for p in sorted(entry.rglob("*"))
                if p.is_file()
            )
            if (target / STAMP_FILE).is_file() and (target / STAMP_FILE).read_text() == stamp:
                continue
            _copy_tree(entry, target)
            (target / STAMP_FILE).write_text(stamp)
    return notices
