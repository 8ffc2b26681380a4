"""One delivery of a subscription (订阅) into its consumer's database, as a task runs it.

The Airflow DAG of a subscription (:mod:`sharehub.airflow.subscription_dags`) and
``sharehub subscriptions deliver`` both call :func:`deliver`. It resolves the target's
connection ref from the hub's settings (never from the directory) and hands over to
:func:`catalog.sharing.subscriptions.deliver`, which writes the change since the last delivered
snapshot into the target in one transaction and records the attempt in the hub.

A delivery that cannot succeed by retrying — the subscription ended, no grant allows it any
more, its connection ref is not configured — raises :class:`DeliveryStopped` (``retryable =
False``): the Airflow task fails at once instead of retrying, and the hub's history says why.
Any other error (the target database down, a lost connection) is retried by Airflow; a retry
resumes from where the target's own bookkeeping says it is, so nothing is applied twice.
"""

from __future__ import annotations

from typing import Any

from sharehub.hub import hub as open_hub
from sharehub.pipeline import faults
from sharehub.settings import Settings, get_settings


class DeliveryStopped(RuntimeError):
    """The delivery cannot go on until somebody acts (a grant, the subscription, a setting)."""

    retryable = False


def target_env(ref: str) -> str:
    """The environment variable that configures connection ref ``ref``."""
    return f"SHAREHUB_CONNECTIONS__{ref.upper()}"


def deliver(
    subscription_id: int,
    run_id: str | None = None,
    *,
    full: bool = False,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Deliver subscription ``subscription_id`` now; the attempt's record (status ``success`` or
    ``current``). ``full`` reloads a mirror whole."""
    from catalog.directory.grades import policy_of
    from catalog.sharing import subscriptions

    s = settings or get_settings()
    h = open_hub(s)
    sub = subscriptions.get(h.engine, subscription_id)
    url = s.connections.get(sub.target_ref) or s.connections.get(sub.target_ref.lower())
    done = subscriptions.deliver(
        h.engine,
        h.lake,
        subscription_id,
        target_url=str(url) if url else None,
        missing=f"set {target_env(sub.target_ref)}",
        policy=policy_of(s),
        full=full,
        run_id=run_id,
        fault=lambda name: faults.point(f"deliver.{name}"),
    )
    if done["status"] == "stopped":
        raise DeliveryStopped(f"subscription {subscription_id} stopped: {done['error']}")
    return done
