"""docker-compose.yml, Dockerfile, .env.example: valid Compose, and in step with the code.

There is no Docker engine here, so the production shape is checked, not started:

* the Compose file against the Compose specification (check-jsonschema's vendored schema);
* every ``SHAREHUB_*`` variable against the settings the code reads, and each hub service's
  environment resolved through ``Settings`` (DB, lake, keys, Redis land on real services and volumes);
* every ``AIRFLOW__SECTION__KEY`` against Airflow's own configuration (core and providers), and every
  Airflow command line against Airflow's own CLI parser;
* health checks or one-shot restarts, named volumes, secrets only from ``.env``;
* the hub API's app factory and the ``sharehub`` sub-commands the init service runs;
* the Dockerfile's Airflow version against the installed one, and its paths against the Compose file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel

from tests.paths import REPO

ROOT = REPO
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
HUB_ENV_EXAMPLE = ROOT / "docker" / "hub.env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

#: The Airflow 3 components production runs, as ``airflow`` sub-commands.
AIRFLOW_COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer", "celery worker"}
#: Services that sign with the hub's private keys: the API (tokens) and the sync workers (certificates).
SIGNERS = {"hub-api", "airflow-worker"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|JWT|ACCESS_KEY|ROOT_USER")
_VAR = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)


# ---- reading the files ----------------------------------------------------------------------
def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            key, sep, value = text.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            out[key.strip()] = value.strip()
    return out


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``, ``$$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op, arg, value = m.group("op"), m.group("arg"), env.get(name)
        if op == ":-":
            return value or arg
        if op == "-":
            return arg if value is None else value
        if op in (":?", "?") and not value:
            raise KeyError(f"required variable {name} is unset: {arg}")
        if value is None:
            raise KeyError(f"variable {name} is not set in .env.example")
        return value

    return _VAR.sub(sub, text)


def referenced_variables(text: str) -> set[str]:
    """Names of the variables a Compose file interpolates (``$$`` is a literal dollar)."""
    return {m.group("name") or m.group("bare") for m in _VAR.finditer(text) if m.group(0) != "$$"}


def _resolve(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_resolve(x, env) for x in node]
    if isinstance(node, dict):
        return {k: _resolve(v, env) for k, v in node.items()}
    return node


def load_compose(env: Mapping[str, str]) -> dict[str, Any]:
    """The Compose file with anchors merged and variables filled in from ``env``."""
    return _resolve(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), env)  # type: ignore[no-any-return]


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def command_argv(service: Mapping[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(x) for x in cmd]


def volume_mounts(service: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each short-syntax volume entry."""
    out = []
    for entry in service.get("volumes") or []:
        assert isinstance(entry, str), f"use the short volume syntax: {entry!r}"
        source, target = entry.split(":")[:2]
        out.append((source, target))
    return out


def is_named(source: str) -> bool:
    return not source.startswith((".", "/", "~", "$"))


def container_port(mapping: str) -> int:
    return int(str(mapping).rsplit(":", 1)[1].split("/")[0])


def dockerfile_lines() -> list[str]:
    """Dockerfile instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def dockerfile_copies() -> dict[str, str]:
    """source -> destination of the Dockerfile's COPY instructions (one source each)."""
    out = {}
    for line in dockerfile_lines():
        if line.upper().startswith("COPY "):
            parts = [p for p in shlex.split(line)[1:] if not p.startswith("--")]
            for src in parts[:-1]:
                out[src.rstrip("/")] = parts[-1]
    return out


def dockerfile_env() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in dockerfile_lines():
        if line.upper().startswith("ENV "):
            for token in shlex.split(line)[1:]:
                key, _, value = token.partition("=")
                out[key] = value
    return out


# ---- what the code reads --------------------------------------------------------------------
def settings_env_names() -> tuple[set[str], set[str]]:
    """(exact variable names, allowed prefixes) of :class:`sharehub.settings.Settings`."""
    from sharehub.settings import Settings

    names: set[str] = set()
    prefixes: set[str] = set()
    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    delimiter = str(Settings.model_config.get("env_nested_delimiter", "__"))
    for name, field in Settings.model_fields.items():
        env_name = prefix + name.upper()
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(env_name + delimiter + sub.upper() for sub in annotation.model_fields)
        elif typing.get_origin(annotation) is dict:
            prefixes.add(env_name + delimiter)  # SHAREHUB_CONNECTIONS__<REF>
        else:
            names.add(env_name)
    # read straight from the environment, outside Settings
    from sharehub.airflow.env import DAGS_FOLDER_ENV

    names.add(DAGS_FOLDER_ENV)
    return names, prefixes


def unknown_sharehub_variables(variables: Iterator[str] | set[str]) -> list[str]:
    names, prefixes = settings_env_names()
    return sorted(
        v
        for v in variables
        if v.startswith("SHAREHUB_")
        and v not in names
        and not any(v.startswith(p) and len(v) > len(p) for p in prefixes)
    )


# ---- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(env_example: dict[str, str]) -> dict[str, Any]:
    return load_compose(env_example)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def hub_services(services: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Services that run hub code (they carry the hub DB setting), with their environment."""
    return {
        name: environment(svc)
        for name, svc in services.items()
        if "SHAREHUB_DATABASE_URL" in environment(svc)
    }


def airflow_services(services: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Services whose command is ``airflow <sub-command>``, with that command."""
    return {name: command_argv(svc) for name, svc in services.items() if command_argv(svc)[:1] == ["airflow"]}


# ---- the Compose specification --------------------------------------------------------------
def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("check-jsonschema")
    assert exe.exists(), f"{exe} missing: install the dev extra (check-jsonschema)"
    return subprocess.run(
        [str(exe), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_compose_file_matches_the_compose_specification(tmp_path: Path) -> None:
    proc = _check_jsonschema(COMPOSE)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # the validator does reject a file that breaks the specification: a misspelt service key
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE.read_text(encoding="utf-8").replace("healthcheck:", "healthchek:", 1), encoding="utf-8"
    )
    proc = _check_jsonschema(broken)
    assert proc.returncode != 0 and "healthchek" in proc.stdout + proc.stderr


def test_the_production_services_are_all_there(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "redis", "minio", "hub-init", "hub-api", "airflow-init"):
        assert name in services, name
    commands = {" ".join(argv[1:]) for argv in airflow_services(services).values()}
    assert commands == AIRFLOW_COMPONENTS
    assert "minio" in services["minio"]["image"]


# ---- health, one-shots, dependencies, volumes -----------------------------------------------
def test_every_service_is_health_checked_or_a_one_shot(services: dict[str, dict[str, Any]]) -> None:
    awaited = {
        dep: cond["condition"]
        for svc in services.values()
        for dep, cond in (svc.get("depends_on") or {}).items()
    }
    for name, svc in services.items():
        check = svc.get("healthcheck")
        if check and not check.get("disable"):
            assert check.get("test"), name
            assert svc.get("restart") in ("always", "unless-stopped"), f"{name}: a service should come back"
        else:
            assert svc.get("restart") == "no", f"{name}: no healthcheck, so it must be a one-shot"
            assert awaited.get(name) == "service_completed_successfully", f"{name}: nobody waits for it"


def test_dependencies_wait_for_what_they_can_observe(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert services[dep].get("healthcheck"), (
                    f"{name} waits for {dep}'s health, which is unchecked"
                )
            elif cond["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} is not a one-shot"
    # the DAG file reads the hub DB, and the API serves it: both after the hub's migrations
    for name in ("hub-api", "airflow-dag-processor", "airflow-worker"):
        assert services[name]["depends_on"]["hub-init"]["condition"] == "service_completed_successfully"


def test_named_volumes_are_declared_and_bind_mounts_exist(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, svc in compose["services"].items():
        for source, target in volume_mounts(svc):
            if is_named(source):
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
            else:
                assert (ROOT / source).exists(), f"{name}: bind mount {source} does not exist"
            assert target.startswith("/"), target
    assert used == declared, f"declared but unused: {declared - used}"


# ---- settings the hub code reads ------------------------------------------------------------
def test_sharehub_variables_are_settings_fields(
    services: dict[str, dict[str, Any]], env_example: dict[str, str]
) -> None:
    used = {key for svc in services.values() for key in environment(svc)}
    assert unknown_sharehub_variables(used) == []
    assert unknown_sharehub_variables(set(env_example)) == []
    assert unknown_sharehub_variables(set(read_env_file(HUB_ENV_EXAMPLE))) == []
    # the check itself catches a name the code does not read
    assert unknown_sharehub_variables({"SHAREHUB_DATABASE_URI", "SHAREHUB_S3__BUCKETS"}) == [
        "SHAREHUB_DATABASE_URI",
        "SHAREHUB_S3__BUCKETS",
    ]
    assert unknown_sharehub_variables({"SHAREHUB_CONNECTIONS__SCJ_DB"}) == []


def _settings_for(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    from sharehub.settings import Settings

    for key, value in env.items():
        if key.startswith("SHAREHUB_"):
            monkeypatch.setenv(key, value)
    return Settings()


def test_hub_services_settings_resolve_to_the_compose_services(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = hub_services(services)
    assert {"hub-init", "hub-api", "airflow-dag-processor", "airflow-worker"} <= set(hub)
    airflow_env = {name: environment(services[name]) for name in airflow_services(services)}
    keys_volumes = set()
    for name, env in hub.items():
        with monkeypatch.context() as mp:
            s = _settings_for(env, mp)
        mounts = {target: source for source, target in volume_mounts(services[name])}

        db = urlsplit(s.hub_db_url)
        assert db.scheme == "postgresql+psycopg" and db.hostname in services, (name, db.hostname)
        assert s.s3.enabled and s.warehouse == f"s3://{s.s3.bucket}/{s.s3.prefix}", name
        assert urlsplit(s.s3.endpoint).hostname in services, name
        assert s.s3.access_key and s.s3.secret_key, name
        assert s.redis_url and urlsplit(s.redis_url).hostname in services, name
        # the var dir on a named volume, not in the container's throwaway layer; the private keys
        # only where tokens and certificates are signed
        assert is_named(mounts.get(str(s.var_dir), "/")), f"{name}: var dir is not a volume"
        keys_volume = mounts.get(str(s.signing_keys_dir))
        if name in SIGNERS:
            assert keys_volume and is_named(keys_volume), f"{name}: keys dir is not a volume"
            keys_volumes.add(keys_volume)
        else:
            assert keys_volume is None, f"{name} does not sign: it should not see the private keys"

        assert s.airflow_executor == "CeleryExecutor", name
        for af_name, af_env in airflow_env.items():
            assert s.airflow_database_url == af_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], (name, af_name)
            assert env["SHAREHUB_DAGS_FOLDER"] == af_env["AIRFLOW__CORE__DAGS_FOLDER"], (name, af_name)
            assert str(s.airflow_dir) == env["SHAREHUB_AIRFLOW_HOME"] == "/opt/airflow"
    # the API (tokens) and the workers (certificates) share one key store
    assert len(keys_volumes) == 1, keys_volumes


def test_every_url_names_a_compose_service(services: dict[str, dict[str, Any]]) -> None:
    ports: dict[str, set[int]] = {"redis": {6379}}
    for name, svc in services.items():
        ports.setdefault(name, set()).update(container_port(p) for p in svc.get("ports") or [])
    seen = 0
    for name, svc in services.items():
        for key, value in environment(svc).items():
            if "://" not in value or not urlsplit(value).hostname:
                continue
            url = urlsplit(value)
            assert url.hostname in services, f"{name}: {key} points at {url.hostname}, not a service"
            assert url.port in ports[url.hostname], f"{name}: {key} uses port {url.port} of {url.hostname}"
            seen += 1
    assert seen >= 10


# ---- Airflow's configuration and CLI --------------------------------------------------------
_AIRFLOW_PROBE = """
import json, sys
from airflow.configuration import conf
from airflow.cli import cli_parser

options = {s: sorted(v.get("options", {})) for s, v in conf.configuration_description.items()}
parser = cli_parser.get_parser()
bad = {}
for argv in json.load(sys.stdin):
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        bad[" ".join(argv)] = exc.code
print(json.dumps({"options": options, "bad_commands": bad}))
"""


def _airflow_probe(commands: list[list[str]], home: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SHAREHUB_"))}
    # the celery sub-commands exist only when the executor is Celery, as in the Compose file
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"})
    proc = subprocess.run(
        [sys.executable, "-c", _AIRFLOW_PROBE],
        input=json.dumps(commands),
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _airflow_command_lines(services: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Every ``airflow ...`` command line in the services' commands and health checks."""
    lines = [argv[1:] for argv in airflow_services(services).values()]
    for svc in services.values():
        test = (svc.get("healthcheck") or {}).get("test") or []
        if test[:1] == ["CMD-SHELL"]:
            argv = shlex.split(test[1].replace("${HOSTNAME}", "host"))
        else:
            argv = list(test[1:])
        if argv[:1] == ["airflow"]:
            lines.append(argv[1:])
    return lines


def test_airflow_options_and_commands_exist_in_airflow(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    from sharehub.airflow.env import DAGBAG_IMPORT_TIMEOUT

    commands = _airflow_command_lines(services)
    assert len(commands) >= len(AIRFLOW_COMPONENTS) + 2  # + the dag-processor and triggerer checks
    probe = _airflow_probe([*commands, ["no-such-command"]], tmp_path)
    assert probe["bad_commands"] == {"no-such-command": 2}

    options = {(section, key) for section, keys in probe["options"].items() for key in keys}
    assert ("celery", "broker_url") in options, "install apache-airflow-providers-celery (dev extra)"
    used = {key for svc in services.values() for key in environment(svc) if key.startswith("AIRFLOW__")}
    assert len(used) >= 10
    unknown = [k for k in sorted(used) if tuple(k.lower().split("__")[1:]) not in options]
    assert unknown == [], f"not Airflow configuration options: {unknown}"

    for name in airflow_services(services):
        env = environment(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        # the same limits as the embedded Airflow (sharehub.airflow.env)
        assert env["AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"] == str(DAGBAG_IMPORT_TIMEOUT), name
        api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert api.path == "/execution/"
        assert command_argv(services[str(api.hostname)])[1:] == ["api-server"], api.hostname
        assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).scheme == "redis"


# ---- secrets and .env.example ---------------------------------------------------------------
def _required_ref(value: str) -> bool:
    return re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*:\?[^}]*\}", value) is not None


def test_secrets_come_only_from_env(env_example: dict[str, str]) -> None:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    checked = 0
    for name, svc in raw["services"].items():
        for key, value in environment(svc).items():
            if SECRET_NAME.search(key):
                assert _required_ref(value), f"{name}: {key} must be ${{VAR:?…}} from .env, not {value!r}"
                checked += 1
            url = urlsplit(value) if "://" in value else None
            if url is not None and "@" in url.netloc:
                userinfo = url.netloc.rsplit("@", 1)[0]
                password = userinfo.split(":", 1)[1] if ":" in userinfo else ""
                assert password and _required_ref(password), f"{name}: {key} has a literal password"
                checked += 1
    assert checked >= 10


def test_env_example_documents_every_variable(env_example: dict[str, str]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    referenced = referenced_variables(text)
    assert referenced - set(env_example) == set(), "used in docker-compose.yml, missing in .env.example"
    assert set(env_example) - referenced == set(), "in .env.example, unused by docker-compose.yml"
    # each setting sits under a comment that explains it
    block_has_comment = False
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            block_has_comment = False
        elif line.startswith("#"):
            block_has_comment = True
        else:
            assert block_has_comment, f".env.example: {line} has no comment"
    # secrets are placeholders that nobody can mistake for a real value
    for key, value in env_example.items():
        if SECRET_NAME.search(key):
            assert value.startswith("change-me"), key
    # compose refuses to start while a required secret is missing
    with pytest.raises(KeyError, match="AIRFLOW_FERNET_KEY"):
        load_compose({k: v for k, v in env_example.items() if k != "AIRFLOW_FERNET_KEY"})


# ---- the hub API and the hub's one-shot -----------------------------------------------------
def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_hub_api_runs_the_app_factory_with_several_workers(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    svc = services["hub-api"]
    argv = command_argv(svc)
    app_ref = next(a for a in argv if ":" in a and not a.startswith("-"))
    module_name, _, attr = app_ref.partition(":")
    assert callable(getattr(importlib.import_module(module_name), attr))
    assert "uvicorn" in argv and "--factory" in argv
    # the hub's own protocol class (header size and time limits), importable as written
    proto_module, _, proto_attr = _option(argv, "--http").partition(":")
    from catalog.api.server import _HeadGuard

    protocol = getattr(importlib.import_module(proto_module), proto_attr)
    # and it reads the limits from the settings (catalog.api.server alone uses the defaults)
    assert issubclass(protocol, _HeadGuard)
    assert protocol.load_limits.__func__ is not _HeadGuard.load_limits.__func__
    assert int(_option(argv, "--limit-concurrency")) >= 100
    assert int(_option(argv, "--workers")) >= 2
    # several workers: /metrics must add up all of them, from a folder that starts empty
    metrics_dir = environment(svc)["PROMETHEUS_MULTIPROC_DIR"]
    assert metrics_dir in svc.get("tmpfs", []), "the metrics folder must be a tmpfs (empty at start)"
    port = int(_option(argv, "--port"))
    with monkeypatch.context() as mp:
        s = _settings_for(environment(svc), mp)
    assert (s.api_host, s.api_port) == (_option(argv, "--host"), port)
    assert port in {container_port(p) for p in svc["ports"]}
    health = next(t for t in svc["healthcheck"]["test"] if t.startswith("http"))
    assert urlsplit(health).port == port and urlsplit(health).path == "/api/v1/health"


def _sharehub_invocations(services: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    out = []
    for svc in services.values():
        argv = command_argv(svc)
        script = argv[-1] if argv[:2] == ["bash", "-c"] else " ".join(argv)
        for part in re.split(r"&&|;|\n", script):
            words = shlex.split(part)
            if words[:1] == ["sharehub"]:
                out.append(words[1:])
    return out


def test_sharehub_commands_used_in_compose_exist(services: dict[str, dict[str, Any]]) -> None:
    import typer
    from typer.testing import CliRunner

    from sharehub.cli.main import app

    calls = _sharehub_invocations(services)
    assert [c[:2] for c in calls] == [["db", "upgrade"], ["lake", "init"], ["catalog", "publish"]]
    root = typer.main.get_command(app)
    for call in calls:
        group: Any = root
        path: list[str] = []
        for word in call:
            commands = getattr(group, "commands", None)  # a group (typer ships its own click)
            if commands is None:
                break
            assert word in commands, f"`sharehub {' '.join([*path, word])}`: no such command"
            group = commands[word]
            path.append(word)
        assert len(path) >= 2, f"sharehub {' '.join(call)}: not a sub-command"
        result = CliRunner().invoke(app, [*path, "--help"])
        assert result.exit_code == 0, result.output
    # the directory the init service publishes is the one the image holds
    publish = next(c for c in calls if c[:2] == ["catalog", "publish"])
    assert dockerfile_copies()["directory"] == publish[2]


# ---- the image ------------------------------------------------------------------------------
def _from_image() -> tuple[str, str]:
    args = {}
    for line in dockerfile_lines():
        word = line.split()[0].upper()
        if word == "ARG" and "=" in line:
            key, _, value = line.split(None, 1)[1].partition("=")
            args[key] = value
        elif word == "FROM":
            image = interpolate(line.split()[1], args)
            m = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", image)
            assert m, f"not an official Airflow image tag: {image}"
            return m.group(1), m.group(2)
    raise AssertionError("no FROM in the Dockerfile")


def test_dockerfile_extends_the_installed_airflow_version() -> None:
    from packaging.specifiers import SpecifierSet

    from sharehub.airflow.env import airflow_version

    version, python = _from_image()
    assert version.split(".")[:2] == airflow_version().split(".")[:2], (version, airflow_version())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert python + ".0" in SpecifierSet(project["requires-python"])
    airflow_pin = next(d for d in project["dependencies"] if d.startswith("apache-airflow"))
    assert version in SpecifierSet(airflow_pin.removeprefix("apache-airflow"))

    user = None
    for line in dockerfile_lines():
        if line.upper().startswith("USER "):
            user = line.split()[1]
        if line.upper().startswith("RUN ") and "pip install" in line:
            assert user == "airflow", "install as the airflow user, as the official image expects"
            assert '"apache-airflow==${AIRFLOW_VERSION}"' in line, "pin Airflow to the image's version"


def test_dockerfile_holds_what_compose_expects(services: dict[str, dict[str, Any]]) -> None:
    copies = dockerfile_copies()
    src = copies["pyproject.toml"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in packages:  # every package the wheel is built from
        assert copies.get(package, "").rstrip("/") == f"{src.rstrip('/')}/{package}", package

    image_env = dockerfile_env()
    dags = copies["dags"]
    assert image_env["AIRFLOW__CORE__DAGS_FOLDER"] == image_env["SHAREHUB_DAGS_FOLDER"] == dags
    for name, env in hub_services(services).items():
        for key in ("SHAREHUB_DAGS_FOLDER", "SHAREHUB_KEYS_DIR", "SHAREHUB_VAR_DIR"):
            assert env[key] == image_env[key], (name, key)
    # scripts a service runs from the image are in the repository's docker/ folder
    docker_dir = copies["docker"]
    for svc in services.values():
        for word in command_argv(svc):
            if word.startswith(docker_dir + "/"):
                assert (ROOT / "docker" / word.removeprefix(docker_dir + "/")).is_file(), word

    ignored = [ln.strip() for ln in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    for source in copies:
        assert source not in ignored, f".dockerignore drops {source}, which the Dockerfile copies"
    for secret in (".env", "hub.env", "sharehub.secrets.toml"):
        assert secret in ignored, f"{secret} would be sent to the build"


def test_container_scripts_are_valid_bash() -> None:
    scripts = sorted((ROOT / "docker").rglob("*.sh"))
    assert len(scripts) >= 2
    for script in scripts:
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{script.name}: {proc.stderr}"
        assert script.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n"), script.name
        assert "set -euo pipefail" in script.read_text(encoding="utf-8"), script.name
