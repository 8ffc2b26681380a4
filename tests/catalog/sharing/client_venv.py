"""The official Delta Sharing client (``delta-sharing`` from PyPI) in a virtualenv of its own.

The client pins pandas < 3 and pyarrow <= 23, older than the hub's, so it cannot live in the
hub's environment; it runs as a separate process, as a consumer's program would. The venv is
made on first use in ``.venv-delta-sharing`` (git-ignored) with uv; where that cannot be done
(no network) the tests that need it are skipped and say why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.paths import REPO

VERSION = "1.4.2"
VENV = REPO / ".venv-delta-sharing"
PYTHON = VENV / "bin" / "python"
UV = Path(sys.executable).parent / "uv"


def ensure() -> str | None:
    """Make the client's venv when missing; None when ready, else why not."""
    stamp = VENV / f".delta-sharing-{VERSION}"
    if stamp.exists():
        return None
    if not UV.exists():
        return "no uv next to the test interpreter to build the delta-sharing client's venv"
    try:
        subprocess.run(
            [str(UV), "venv", "-q", "--python", sys.executable, str(VENV)], check=True, timeout=300
        )
        subprocess.run(
            [str(UV), "pip", "install", "-q", "--python", str(PYTHON), f"delta-sharing=={VERSION}"],
            check=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        return f"could not install delta-sharing {VERSION} into {VENV}: {exc}"
    stamp.touch()
    return None


def run(script: str, *args: str) -> Any:
    """Run ``script`` with the client's Python; its last stdout line is JSON."""
    out = subprocess.run(
        [str(PYTHON), "-c", script, *args], capture_output=True, text=True, timeout=300, check=False
    )
    if out.returncode != 0:
        return {"error": out.stderr[-3000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])
