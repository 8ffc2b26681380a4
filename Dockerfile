# The hub image: the official Airflow image extended with the sharehub code, as Airflow's "Building
# the image" guide says to extend it (install as the airflow user, together with the image's own
# apache-airflow version so that pip does not change Airflow). Every hub and Airflow service in
# docker-compose.yml runs this image.
#
#   docker build -t sharehub:local .
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

# Mount points of the named volumes: a new named volume copies the owner and mode from here, so
# the private signing keys stay readable by the airflow user only.
USER root
RUN mkdir -p /opt/sharehub/var /opt/sharehub/keys \
    && chown -R airflow:0 /opt/sharehub \
    && chmod 0700 /opt/sharehub/keys

USER airflow
COPY --chown=airflow:0 pyproject.toml README.md /opt/sharehub/src/
COPY --chown=airflow:0 sharehub /opt/sharehub/src/sharehub
COPY --chown=airflow:0 catalog /opt/sharehub/src/catalog
COPY --chown=airflow:0 lake /opt/sharehub/src/lake
COPY --chown=airflow:0 quality /opt/sharehub/src/quality
COPY --chown=airflow:0 connectors /opt/sharehub/src/connectors
# AIRFLOW_VERSION is the base image's own (ENV in apache/airflow), so Airflow stays as shipped.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /opt/sharehub/src

COPY --chown=airflow:0 dags /opt/sharehub/dags
COPY --chown=airflow:0 directory /opt/sharehub/directory
COPY --chown=airflow:0 docker /opt/sharehub/docker

ENV AIRFLOW__CORE__DAGS_FOLDER=/opt/sharehub/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=false \
    SHAREHUB_DAGS_FOLDER=/opt/sharehub/dags \
    SHAREHUB_VAR_DIR=/opt/sharehub/var \
    SHAREHUB_KEYS_DIR=/opt/sharehub/keys
