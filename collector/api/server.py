"""Run the API with uvicorn: ``oee-collector serve`` (or inside ``run``)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from collector.api.app import create_app
from collector.config import CollectorConfig, load_collector_config
from lineside_common.health_http import parse_listen

# Worker processes rebuild the app from these (the URL may hold a password: it goes
# to the children through the environment, never on a command line).
_CONFIG_ENV = "LINESIDE_API_CONFIG"
_URL_ENV = "LINESIDE_API_DATABASE_URL"


def app_factory() -> FastAPI:
    """The app of one uvicorn worker process (``workers`` > 1)."""
    path = os.environ.get(_CONFIG_ENV) or None
    config = load_collector_config(Path(path) if path else None)
    return create_app(config, os.environ[_URL_ENV])


class _ExitCleanly(uvicorn.Server):
    """uvicorn re-raises the SIGTERM/SIGINT it handled once it has shut down, so the
    process would end "killed by SIGTERM"; a service stopped on request exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def serve(config: CollectorConfig, config_path: Path | None, database_url: str) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn handles both and drains requests)."""
    host, port = parse_listen(config.api.listen)
    common = {
        "host": host,
        "port": port,
        "log_config": None,  # keep the collector's key=value logging
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }
    if config.api.workers == 1:
        app = create_app(config, database_url)
        _ExitCleanly(uvicorn.Config(app, **common)).run()
        return
    os.environ[_CONFIG_ENV] = "" if config_path is None else str(config_path.resolve())
    os.environ[_URL_ENV] = database_url
    uvicorn.run(
        "collector.api.server:app_factory", factory=True, workers=config.api.workers, **common
    )


class BackgroundApiServer:
    """The API in a thread of another service (``api.serve_with_ingest``)."""

    def __init__(self, app: FastAPI, listen: str) -> None:
        host, port = parse_listen(listen)
        self._listen = listen
        self._server = uvicorn.Server(
            uvicorn.Config(
                app, host=host, port=port, log_config=None, access_log=False, server_header=False
            )
        )
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        deadline = threading.Event()
        waited = 0.0
        while not self._server.started and self._thread.is_alive() and waited < timeout_s:
            deadline.wait(0.05)
            waited += 0.05
        if not self._server.started:
            raise ValueError(
                f"api.listen {self._listen}: the API did not start listening within "
                f"{timeout_s:g} s (is the port in use? see the log above)"
            )

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
