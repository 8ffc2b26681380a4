"""The ``hold`` fault action (sharehub/pipeline/faults.py): armed by a file, taken once, ended
by removing ``<path>.held`` (or by killing the process, as tests/deploy/test_celery_executor.py does)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from sharehub.pipeline import faults

POINT = "publish.after_curated_commit"


def test_hold_waits_once_armed_and_only_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    armed = tmp_path / "hold"
    held = tmp_path / "hold.held"
    monkeypatch.setenv(faults.ENV, f"{POINT}:hold={armed}")
    faults.point(POINT)  # not armed: passes
    faults.point("publish.before_curated_commit")  # another point: passes
    assert not held.exists()

    armed.touch()
    passed = threading.Event()
    t = threading.Thread(target=lambda: (faults.point(POINT), passed.set()))
    t.start()
    deadline = time.monotonic() + 10
    while not (held.exists() and held.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert int(held.read_text()) == os.getpid() and not armed.exists()
    faults.point(POINT)  # a second process at the point while the first holds: passes
    time.sleep(0.3)
    assert not passed.is_set()  # the first one still waits
    held.unlink()  # released
    t.join(timeout=5)
    assert passed.is_set()
