"""The server's access log carries no personal data.

uvicorn's access log writes each request line, and request lines carry citizen IDs and credit
codes (``/api/v1/subjects/{id}``, ``?subject=…``, key filters). The audit log is the one place
that records who asked about whom, under its own access rules; the access log is read by
operators and shipped to log systems. So the hub rewrites the request line before uvicorn's
access logger formats it:

* every query value becomes ``*`` (the parameter names stay: ``?subject=*&limit=*``);
* the path segment after ``subjects`` becomes ``*`` (``/api/v1/subjects/*/certificates``).

The filter sits on the ``uvicorn.access`` logger itself, so it applies however uvicorn is
started (``sharehub serve``, ``uvicorn sharehub.serve:create_app --factory``, gunicorn workers)
and whatever handlers the deployment's log configuration adds. Correlate an access-log line
with its audit record by the response's ``X-Request-Id`` and the time.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

ACCESS_LOGGER = "uvicorn.access"
#: path segments whose next segment identifies a person or an enterprise
_IDENTIFYING = frozenset({"subjects"})


def redact_target(target: str) -> str:
    """A request target (path and query) with identifying parts replaced by ``*``."""
    path, sep, query = target.partition("?")
    parts = path.split("/")
    for i in range(len(parts) - 1):
        if parts[i] in _IDENTIFYING and parts[i + 1]:
            parts[i + 1] = "*"
    out = "/".join(parts)
    if sep:
        names = [item.partition("=")[0] for item in query.replace(";", "&").split("&") if item]
        out += "?" + "&".join(f"{quote(name, safe='')[:40]}=*" for name in names[:20])
        if len(names) > 20:
            out += "&…"
    return out


class RedactingFilter(logging.Filter):
    """Rewrites the request line of uvicorn's access records (args: client, method, target, …)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_target(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    """Put the filter on uvicorn's access logger (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
