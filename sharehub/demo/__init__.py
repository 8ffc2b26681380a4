"""Demo data: five departments' source systems and their directory files.

``generate(out_dir)`` writes deterministic, realistic source data (with about 1 % of
deliberately bad rows per dataset); ``DIRECTORY_DIR`` is the repository's ``directory/``
folder holding the departments' directory YAML files that describe it.
"""

from __future__ import annotations

from pathlib import Path

from sharehub.demo.generate import generate
from sharehub.demo.people import REFERENCE_DATE

DIRECTORY_DIR = Path(__file__).resolve().parents[2] / "directory"

__all__ = ["DIRECTORY_DIR", "REFERENCE_DATE", "generate"]
