"""The sync pipeline: one run of one dataset, extract+land -> validate -> publish.

Each step is one module (``extract``, ``validate``, ``publish``); ``sync`` runs the three in
this process; ``adapters`` turns the directory's declarations into the plain arguments of the
connectors, the quality checks and the lake; ``serving_sync`` keeps serving equal to
curated; ``schemas`` holds the lake tables' Arrow shapes;
``run_guard``, ``intake``, ``faults``, ``fanout`` and ``reports`` are the steps' protocol,
bad-input policies, fault points, stream splitting and read-outs.

The names below are what the Airflow tasks (``sharehub.airflow.factory`` calls the steps by name),
the CLI and the demo use.
"""

from sharehub.hub import Hub, QualityBlocked, SyncError, hub
from sharehub.pipeline.extract import extract_land
from sharehub.pipeline.publish import publish
from sharehub.pipeline.schemas import run_filter
from sharehub.pipeline.serving_sync import converge_serving
from sharehub.pipeline.sync import new_run_id, sync
from sharehub.pipeline.validate import validate, write_report

__all__ = [
    "Hub",
    "QualityBlocked",
    "SyncError",
    "converge_serving",
    "extract_land",
    "hub",
    "new_run_id",
    "publish",
    "run_filter",
    "sync",
    "validate",
    "write_report",
]
