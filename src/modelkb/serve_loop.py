"""Running a local HTTP server (the catalog, a packaged model): until Ctrl-C, or in the background."""

from __future__ import annotations

import threading
from socketserver import BaseServer


def serve_until_interrupted(server: BaseServer) -> None:
    """Serve in this thread until Ctrl-C (or ``server.shutdown()``), then close the socket.

    Ctrl-C is how a user stops a foreground server, so it ends the loop instead of propagating.
    """
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def start_in_thread(server: BaseServer, *, name: str = "modelkb-server") -> threading.Thread:
    """Serve in a daemon thread; stop it with ``server.shutdown()`` and ``server.server_close()``."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return thread
