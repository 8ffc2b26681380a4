"""sharehub sync DAGs for Airflow: one DAG per published dataset, built from the data directory.

Kept thin on purpose (the scheduler re-parses this file): all logic lives in
``sharehub.airflow.factory``; heavy libraries are imported only inside the tasks.
"""

from __future__ import annotations

from sharehub.airflow.factory import register

register(globals())
