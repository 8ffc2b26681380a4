"""``python -m sharehub.cli``: the same command line as ``sharehub``."""

from sharehub.cli.main import app

app()
