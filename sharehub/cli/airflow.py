"""``sharehub airflow``: run the Airflow services for this hub and trigger sync runs.

``up`` starts the api-server, scheduler and dag-processor (LocalExecutor, or what
``SHAREHUB_AIRFLOW_EXECUTOR`` says) on the metadata DB from ``SHAREHUB_AIRFLOW_DATABASE_URL``
and keeps them running until Ctrl-C; ``trigger`` starts one run of a dataset's DAG as an
operator would, and can wait for it. Compose runs the same components as separate services.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from sharehub.settings import get_settings

app = typer.Typer(help="Airflow services and triggered sync runs", no_args_is_help=True)


@app.command("up")
def up(port: Annotated[int, typer.Option(help="api-server port")] = 8080) -> None:
    """Run api-server, scheduler and dag-processor until Ctrl-C (logs under var/logs/airflow-services)."""
    from sharehub.airflow.services import AirflowServices

    with AirflowServices(get_settings(), port=port) as af:
        typer.echo(f"Airflow up: {af.base_url} (logs in {af.logs}); Ctrl-C to stop")
        try:
            while True:
                time.sleep(5)
                af.check_alive()
        except KeyboardInterrupt:
            typer.echo("stopping")


@app.command("trigger")
def trigger(
    code: str,
    full: Annotated[bool, typer.Option("--full", help="full resync")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the run to finish")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 900.0,
) -> None:
    """Trigger one run of a dataset's sync DAG (the services must be up)."""
    from sharehub.airflow.services import AirflowServices

    af = AirflowServices(get_settings())
    run_id = af.trigger(code, full=full)
    typer.echo(f"triggered {run_id}")
    if wait:
        dag_id = f"sync__{code}" if not code.startswith("sync__") else code
        state = af.wait_runs({dag_id: run_id}, timeout=timeout, check_services=False)[dag_id]
        typer.echo(f"{dag_id} {run_id}: {state}")
        if state != "success":
            raise typer.Exit(1)
