"""Airflow: the DAG factory and its specs, the embedded environment, and Airflow run as services."""
