"""Compatibility shim for the Celery test stack's subprocesses (on their ``PYTHONPATH`` only).

apache-airflow-providers-celery 3.26.0 imports ``retry`` from ``celery.backends.database``;
Celery 5.7.0 removed that decorator (celery/celery#10130: the database backend now retries
through ``BaseBackend._ensure_retryable``), so with both installed the scheduler cannot load the
CeleryExecutor at all (``ImportError: cannot import name 'retry'``). pyproject.toml pins
``celery<5.7`` for that reason; this shim lets the test run on an environment that still has
5.7.0 by putting back, only when it is missing, the decorator 5.6 had: call, and on a retryable
database error retry up to ``max_retries`` (3) times. Nothing is imported until Celery's database
backend module itself is imported (the hook below patches it right after it loads).
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import logging
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

TARGET = "celery.backends.database"


def _retry(module: ModuleType) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    errors: tuple[type[BaseException], ...] = module.RETRYABLE_DB_ERRORS
    log = logging.getLogger(TARGET)

    def retry(fun: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fun)
        def inner(*args: Any, **kwargs: Any) -> Any:
            max_retries = int(kwargs.pop("max_retries", 3))
            for attempt in range(1, max_retries + 1):
                try:
                    return fun(*args, **kwargs)
                except errors:
                    if attempt >= max_retries:
                        raise
                    log.warning(
                        "Failed operation %s; retrying %d more times", fun.__name__, max_retries - attempt
                    )
            return None

        return inner

    return retry


class _PatchAfterLoad(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            if not hasattr(module, "retry"):
                module.retry = _retry(module)  # type: ignore[attr-defined]

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


if TARGET not in sys.modules:
    sys.meta_path.insert(0, _PatchAfterLoad())
