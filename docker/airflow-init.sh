#!/usr/bin/env bash
# One-shot before the Airflow services start: migrate the metadata DB, then make the first admin
# user of the UI (FAB auth manager). Unlike the image's _AIRFLOW_DB_MIGRATE switch, a failed
# migration stops here, and the services that wait for this container do not start.
# `airflow users create` leaves an existing user (and its password) as it is and exits 0.
set -euo pipefail
: "${AIRFLOW_ADMIN_USER:?AIRFLOW_ADMIN_USER is not set}"
: "${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD is not set}"

airflow version
airflow db migrate
airflow users create \
    --username "$AIRFLOW_ADMIN_USER" \
    --firstname Airflow --lastname Admin \
    --email admin@example.invalid \
    --role Admin \
    --password "$AIRFLOW_ADMIN_PASSWORD"
