"""sharehub delivery DAGs for Airflow: one DAG per active subscription (订阅), run when its
dataset's curated table is published.

Kept thin on purpose (the scheduler re-parses this file): all logic lives in
``sharehub.airflow.subscription_dags``; heavy libraries are imported only inside the task.
"""

from __future__ import annotations

from sharehub.airflow.subscription_dags import register_subscriptions

register_subscriptions(globals())
