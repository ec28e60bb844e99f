"""glibc malloc settings for large-buffer churn (lineside_common.malloctune)."""

from __future__ import annotations

import platform

import pytest

from lineside_common import malloctune


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_settings_apply_once_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(malloctune, "_tuned", False)
    assert malloctune.keep_large_buffers_in_heap()
    assert malloctune.keep_large_buffers_in_heap()  # idempotent


def test_other_c_libraries_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_glibc(_name: str) -> object:
        raise OSError("libc.so.6: cannot open shared object file")

    monkeypatch.setattr(malloctune, "_tuned", False)
    monkeypatch.setattr(malloctune.ctypes, "CDLL", no_glibc)
    assert not malloctune.keep_large_buffers_in_heap()
