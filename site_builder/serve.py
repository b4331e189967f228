"""Serve a built catalog on 127.0.0.1 with the standard library (no network beyond loopback)."""

from __future__ import annotations

import functools
import logging
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from modelkb.serve_loop import start_in_thread

logger = logging.getLogger(__name__)

EXTRA_TYPES = {
    ".wasm": "application/wasm",  # WebAssembly.instantiateStreaming insists on it
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".json": "application/json",
    ".onnx": "application/octet-stream",
    ".md": "text/markdown; charset=utf-8",
}


class CatalogRequestHandler(SimpleHTTPRequestHandler):
    """Static files with the MIME types the catalog needs; quiet unless debugging."""

    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        **EXTRA_TYPES,
    }

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


def make_server(
    site_dir: str | Path, *, host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    """An HTTP server for ``site_dir`` bound to ``host:port`` (port 0: any free port)."""
    folder = Path(site_dir).resolve()
    if not (folder / "index.html").is_file():
        raise FileNotFoundError(
            f"{folder} holds no built catalog (no index.html); run `modelkb build` first"
        )
    handler = functools.partial(CatalogRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def serve_in_thread(
    site_dir: str | Path, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[ThreadingHTTPServer, str]:
    """Start serving in a daemon thread; returns the server (call ``shutdown()``) and its URL."""
    server = make_server(site_dir, host=host, port=port)
    start_in_thread(server, name="modelkb-catalog")
    return server, server_url(server)
