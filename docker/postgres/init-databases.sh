#!/usr/bin/env bash
# Makes the hub's and Airflow's databases, each owned by its own login role. The postgres image runs
# this once, when it initialises an empty data volume; later password changes are made with
# ALTER ROLE (docs/deploy.md). The passwords are read from the environment inside psql (\getenv),
# so they never appear on a command line.
set -euo pipefail
: "${HUB_DB_PASSWORD:?HUB_DB_PASSWORD is not set}"
: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\getenv hub_password HUB_DB_PASSWORD
\getenv airflow_password AIRFLOW_DB_PASSWORD
CREATE ROLE sharehub LOGIN PASSWORD :'hub_password';
CREATE DATABASE sharehub OWNER sharehub ENCODING 'UTF8';
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow ENCODING 'UTF8';
SQL
