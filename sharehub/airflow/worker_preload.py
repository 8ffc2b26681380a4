"""Imported once by each Celery worker as it starts, before it forks its pool.

A sync task runs in a process forked from the worker (Airflow's task supervisor), and its steps
import the pipeline lazily: pyarrow, pyiceberg, SQLAlchemy and, in ``validate``, Great
Expectations with its shared context — several seconds of CPU per task, paid again by every
task, because nothing the task imported survives it. Imported here, in the worker's own process,
they are inherited by every fork instead (copy-on-write), and a task starts with them loaded.

Configure it in Airflow (workers only read it; the scheduler ignores ``imports``)::

    [celery]
    extra_celery_config = {"imports": ["sharehub.airflow.worker_preload"]}

(``AIRFLOW__CELERY__EXTRA_CELERY_CONFIG`` in docker-compose.yml). Nothing here runs a sync or
connects anywhere: it imports, and builds the Great Expectations context (in memory).
"""

from __future__ import annotations

from quality import _gx
from sharehub import pipeline

_gx.warm_up()

__all__ = ["pipeline"]
