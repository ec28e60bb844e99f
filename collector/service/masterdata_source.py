"""The master data file, reloaded when it changes (calendar and product edits apply to
every window they touch: OEE answers carry the master data's fingerprint).

A file that stops validating keeps the last good master data in force; the error is
logged once per change of the file and counted, so a typo never takes the API down.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from collector.masterdata import MasterData, load_masterdata
from lineside_common.yamlconfig import ConfigFileError

log = logging.getLogger(__name__)


class MasterDataSource:
    """``current()`` is the master data in force: the file's, reloaded on change."""

    def __init__(
        self, path: Path | None, registry: CollectorRegistry = REGISTRY, check_every_s: float = 1.0
    ) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._check_every_s = check_every_s
        self._next_check = 0.0
        self._stamp: tuple[int, int] | None = None
        self.reload_errors = Counter(
            "lineside_masterdata_reload_errors",
            "Master data file edits that did not validate (the last good data stays in force)",
            registry=registry,
        )
        # the first load must succeed: a service does not start on bad master data
        self._data = MasterData.empty() if path is None else load_masterdata(path)
        if path is not None:
            self._stamp = _stamp(path)

    @property
    def path(self) -> Path | None:
        return self._path

    def current(self, now_monotonic: float | None = None) -> MasterData:
        """The master data in force, reloading the file if it changed (checked at most
        every ``check_every_s``)."""
        if self._path is None:
            return self._data
        import time

        now = time.monotonic() if now_monotonic is None else now_monotonic
        if now < self._next_check:
            return self._data
        with self._lock:
            self._next_check = now + self._check_every_s
            self._reload_if_changed()
            return self._data

    def reload(self) -> MasterData:
        """Reload now (raises ConfigFileError when the file does not validate)."""
        assert self._path is not None
        with self._lock:
            stamp = _stamp(self._path)
            self._data = load_masterdata(self._path)
            self._stamp = stamp
            return self._data

    def _reload_if_changed(self) -> None:
        assert self._path is not None
        try:
            stamp = _stamp(self._path)
        except OSError as exc:
            if self._stamp is not None:
                log.error("event=masterdata_unreadable path=%s error=%s", self._path, exc.strerror)
                self._stamp = None
                self.reload_errors.inc()
            return
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._data = load_masterdata(self._path)
        except ConfigFileError as exc:
            self.reload_errors.inc()
            log.error(
                "event=masterdata_invalid path=%s problems=%d first=%r action=keep_previous",
                self._path,
                len(exc.issues),
                exc.issues[0].render() if exc.issues else "",
            )
            return
        log.info(
            "event=masterdata_reloaded path=%s fingerprint=%s",
            self._path,
            self._data.fingerprint[:12],
        )


def _stamp(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size
