"""Backup and restore of a whole hub (容灾备份): ``sharehub backup DEST`` / ``sharehub restore SRC``.

:mod:`~sharehub.backup.archive` is the folder format, :mod:`~sharehub.backup.dump` writes a
backup, :mod:`~sharehub.backup.load` loads one onto a fresh hub and
:mod:`~sharehub.backup.verify` proves the result. See docs/reliability.md "Backup and restore".
"""

from __future__ import annotations

from sharehub.backup.archive import BackupError
from sharehub.backup.dump import take
from sharehub.backup.load import check, restore

__all__ = ["BackupError", "check", "restore", "take"]
