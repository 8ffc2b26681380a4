"""B5/B6: the access API's gated calls against a bare endpoint of the same server.

What is measured:

* ``bare``: ``GET /api/v1/ping`` — a real endpoint of the same app, behind the same middleware
  stack (the audit middleware passes it through unaudited, like ``/health``), returning a fixed
  JSON with no database and no authentication: the physical limit of this server stack.
* ``records`` (B5): ``GET /api/v1/datasets/SCJ-LIC/records?subject=<uscc>`` with a bearer
  token and the purpose headers: token check, app re-read, grant state, rate limit, subject
  lookup in the serving table, field shaping and masking, one audit record written before
  the response leaves. The subjects cycle deterministically through many different
  enterprises (no hot key).
* ``verify`` (B6): ``GET /api/v1/certificates/<identifier>/verify`` (public): record lookup,
  Ed25519 signature check, face digest, status and dates, one audit record; identifiers
  cycle through many certificates.

Targets: records >= 50 % of bare's req/s with p99 <= 50 ms; verify >= 50 % of bare; audit
rows == audited responses and the chain verifies.

Setup: a fresh PostgreSQL database on the local server (``postgresql+psycopg://postgres@
127.0.0.1:5432/bench_access_<hex>``, created and dropped through the ``postgres`` database)
migrated like ``sharehub db upgrade``, or with ``--hub-db sqlite`` the embedded SQLite file.
The published hub of ``tests/catalog/api_hub.py`` (directory, keys, apps) plus a business-licence
serving table of ``--rows`` enterprises (200,000; 2,000 quick) and signed certificates for
``--certificates`` of them (20,000; 200 quick). The app 企业开办 holds grants on SCJ-LIC
(approved by a hub admin) and SCJ-OPEN, with a rate limit far above what the run reaches.

Server: ``uvicorn sharehub.serve:create_app --factory`` with ``--workers`` (default 1, see
WORKERS) in a child process, configured through ``SHAREHUB_*`` variables only.

Load: a separate process (``python benchmarks/access_api.py --load SPEC``) opens ``--clients``
keep-alive HTTP/1.1 connections on loopback, sends one warm-up request on each, then runs a
closed loop for ``--seconds`` and writes its latencies as JSON. The default client is a raw
asyncio protocol (a pre-encoded request, the response framed by Content-Length) on uvloop:
of the clients tried it costs the least CPU per request, which matters on a 2-core machine
shared by client, server and database (``--client aiohttp|httpx`` for the comparison;
measured against ``/ping``: raw 0.03 ms of client CPU per request, aiohttp 0.13 (0.24-0.30
on the records scenario), httpx 2.9 — httpx alone could not drive more than ~380 req/s).

Usage: ``.venv/bin/python benchmarks/access_api.py [--seconds 10] [--clients 32] [--quick]
[--hub-db postgresql|sqlite] [--workers 1] [--rounds 1]``; prints a table, writes
``benchmarks/results/access_api.json`` and exits non-zero on any failure. ``run()`` is the
same as a function for ``make bench`` (``benchmarks/run.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "access_api.json"

APP = "企业开办"
RATE_LIMIT = 1_000_000_000  # per minute: never reached, but counted on every call
#: uvicorn workers, the same for bare and the gated scenarios. One on this 2-core machine, where
#: the server shares the cores with PostgreSQL and the load process: a second worker lets the bare
#: endpoint use both cores while the gated calls' second core goes to PostgreSQL anyway, so the
#: ratios come out no better (measured 0.12 and 0.10-0.16 with two workers against 0.12-0.16 and
#: 0.15-0.19 with one), and one worker keeps the in-process rate limiter exact without Redis
#: (several workers need ``--redis-url``). Production sizes one worker per core (docs/deploy.md).
WORKERS = 1
ADMIN, ADMIN_PASSWORD = "bench_admin", "bench-admin-password"
PG_ADMIN_URL = os.environ.get("SHAREHUB_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
END_USER, CASE_NUMBER = "officer-007", "QYKB-2026-000123"

FULL = {"rows": 200_000, "certificates": 20_000, "subjects": 50_000}
QUICK = {"rows": 2_000, "certificates": 200, "subjects": 2_000, "seconds": 2.0}


# ---- the load process -------------------------------------------------------------------------


@dataclass
class LoadSpec:
    """What the load process does: one scenario, N connections, S seconds."""

    host: str
    port: int
    paths: list[str]
    headers: dict[str, str]
    clients: int
    seconds: float
    client: str = "raw"


def _request_bytes(spec: LoadSpec, path: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {spec.host}:{spec.port}", "Accept: application/json"]
    lines += [f"{k}: {v}" for k, v in spec.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class _Load:
    """Shared state of one load run (single-threaded: the event loop's)."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.requests = [_request_bytes(spec, p) for p in spec.paths]
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.warmup_errors: Counter[str] = Counter()
        self.responses = 0  # every response received, warm-up included (the audit must hold them)
        self.end = float("inf")


class _RawConnection(asyncio.Protocol):
    """One keep-alive connection: send, read one Content-Length framed response, repeat."""

    def __init__(self, load: _Load, start: int) -> None:
        self.load = load
        self.next = start  # index into load.requests; strides by the number of connections
        self.buf = bytearray()
        self.t0 = 0.0
        self.measuring = False
        self.outstanding = False
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def send(self) -> None:
        reqs = self.load.requests
        req = reqs[self.next % len(reqs)]
        self.next += self.load.spec.clients
        self.outstanding = True
        self.t0 = time.perf_counter()
        assert self.transport is not None
        self.transport.write(req)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._fail("no content-length (chunked responses are not supported)")
                return
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(self.buf) < total:
                return
            status = head[9:12].decode("ascii", "replace")
            del self.buf[:total]
            self._answered(status)

    def _answered(self, status: str) -> None:
        t = time.perf_counter()
        load = self.load
        load.responses += 1
        self.outstanding = False
        ok = status.startswith("2")
        if self.measuring:
            load.latencies.append(t - self.t0)
            load.statuses[status] += 1
            if not ok:
                load.errors[status] += 1
        elif not ok:
            load.warmup_errors[status] += 1
        if self.waiter is not None:
            waiter, self.waiter = self.waiter, None
            waiter.set_result(None)
        elif self.measuring and t < load.end:
            self.send()
        else:
            self._finish()

    def _fail(self, why: str) -> None:
        if self.outstanding:
            (self.load.errors if self.measuring else self.load.warmup_errors)[why] += 1
            self.outstanding = False
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        if self.transport is not None:
            self.transport.close()
        self._finish()

    def _finish(self) -> None:
        self.measuring = False
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.outstanding or self.waiter is not None:
            self._fail(f"connection lost: {type(exc).__name__ if exc else 'closed'}")
        self._finish()

    async def warm_up(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        self.send()
        await self.waiter

    def start(self, end: float) -> None:
        self.load.end = end
        self.measuring = True
        self.send()


async def _run_raw(load: _Load) -> float:
    loop = asyncio.get_running_loop()
    spec = load.spec
    conns: list[_RawConnection] = []
    for i in range(spec.clients):
        _, proto = await loop.create_connection(
            lambda i=i: _RawConnection(load, i),
            spec.host,
            spec.port,  # type: ignore[misc]
        )
        conns.append(proto)
    await asyncio.gather(*(c.warm_up() for c in conns))
    t_start = time.perf_counter()
    end = t_start + spec.seconds
    for c in conns:
        if not c.done.done():
            c.start(end)
    await asyncio.gather(*(c.done for c in conns))
    elapsed = time.perf_counter() - t_start
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    return elapsed


async def _run_library(load: _Load) -> float:
    """The same closed loop with aiohttp or httpx (for the client-cost comparison)."""
    spec = load.spec
    base = f"http://{spec.host}:{spec.port}"
    window = {"end": float("inf")}
    ready = asyncio.Event()
    warm = [0]

    async def one(get: Callable[[str], Any], i: int) -> None:
        n, k = len(spec.paths), i

        async def call(measured: bool) -> None:
            nonlocal k
            path = spec.paths[k % n]
            k += spec.clients
            t0 = time.perf_counter()
            try:
                status = str(await get(path))
            except Exception as exc:
                (load.errors if measured else load.warmup_errors)[type(exc).__name__] += 1
                return
            load.responses += 1
            if measured:
                load.latencies.append(time.perf_counter() - t0)
                load.statuses[status] += 1
            if not status.startswith("2"):
                (load.errors if measured else load.warmup_errors)[status] += 1

        await call(False)
        warm[0] += 1
        if warm[0] == spec.clients:
            ready.set()
        await ready.wait()
        while time.perf_counter() < window["end"]:
            await call(True)

    async def measure(get: Callable[[str], Any]) -> float:
        tasks = [asyncio.create_task(one(get, i)) for i in range(spec.clients)]
        await ready.wait()
        t_start = time.perf_counter()
        window["end"] = t_start + spec.seconds
        await asyncio.gather(*tasks)
        return time.perf_counter() - t_start

    if spec.client == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=spec.clients)
        async with aiohttp.ClientSession(base, connector=connector, headers=spec.headers) as session:

            async def get_aiohttp(path: str) -> int:
                async with session.get(path) as r:
                    await r.read()
                    return r.status

            return await measure(get_aiohttp)
    import httpx

    limits = httpx.Limits(max_connections=spec.clients, max_keepalive_connections=spec.clients)
    async with httpx.AsyncClient(base_url=base, headers=spec.headers, limits=limits, timeout=60) as hc:

        async def get_httpx(path: str) -> int:
            return (await hc.get(path)).status_code

        return await measure(get_httpx)


def load_main(spec_path: str) -> int:
    """The load process: run one scenario, write its figures as JSON next to the spec (SPEC.out).

    (A file, not stdout: libuv may leave stdout non-blocking, and a big write to a pipe
    then fails halfway.)"""
    import resource

    spec = LoadSpec(**json.loads(Path(spec_path).read_text(encoding="utf-8")))
    load = _Load(spec)
    try:
        import uvloop

        uvloop.install()
        loop_name = "uvloop"
    except ImportError:
        loop_name = "asyncio"
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    runner = _run_raw if spec.client == "raw" else _run_library
    elapsed = asyncio.run(runner(load))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "latencies_us": [round(x * 1e6) for x in load.latencies],
        "statuses": dict(load.statuses),
        "errors": dict(load.errors),
        "warmup_errors": dict(load.warmup_errors),
        "responses": load.responses,
        "elapsed_s": elapsed,
        "client_cpu_s": (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime),
        "loop": loop_name,
    }
    Path(spec_path + ".out").write_text(json.dumps(out), encoding="utf-8")
    return 0


# ---- setup -----------------------------------------------------------------------------------


@dataclass
class Hub:
    """A prepared hub: where its DB and keys are, the app's credentials, what to ask for."""

    database_url: str
    var_dir: Path
    client_id: str
    secret: str
    subjects: list[str]
    certificates: list[str]
    drop: Callable[[], None] = lambda: None
    timings: dict[str, float] = field(default_factory=dict)


def _create_pg_database() -> tuple[str, Callable[[], None]]:
    import sqlalchemy as sa

    name = f"bench_access_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()

    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, drop


def _licences(n: int) -> Any:
    """``n`` business licences with valid credit codes (deterministic)."""
    import datetime as dt
    import decimal

    import pyarrow as pa

    from sharehub.demo.identifiers import credit_code

    rng = random.Random(20260505)
    areas = ["330102", "330105", "330106", "330108", "330109", "330110"]
    seen: set[str] = set()
    uscc: list[str] = []
    est: list[dt.date] = []
    while len(uscc) < n:
        d = dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(9000))
        code = credit_code(rng, rng.choice(areas), d)
        if code not in seen:
            seen.add(code)
            uscc.append(code)
            est.append(d)
    surnames, given = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗", "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平"
    return pa.table(
        {
            "uscc": uscc,
            "ent_name": [f"杭州{i:06d}科技有限公司" for i in range(n)],
            "legal_rep": [rng.choice(surnames) + rng.choice(given) + rng.choice(given) for _ in range(n)],
            "capital": pa.array(
                [decimal.Decimal(rng.randrange(10_000, 100_000_000)) / 100 for _ in range(n)],
                pa.decimal128(18, 2),
            ),
            "est_date": est,
            "valid_until": [None if i % 3 else d + dt.timedelta(days=10_957) for i, d in enumerate(est)],
            "status": ["存续" if i % 50 else "注销" for i in range(n)],
        }
    )


def prepare_hub(tmp: Path, *, hub_db: str, rows: int, certificates: int, subjects: int) -> Hub:
    """A published hub with ``rows`` licences, ``certificates`` signed certificates and 企业开办's grants."""
    import warnings

    import sqlalchemy as sa

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    # tests.catalog.api_hub imports FastAPI's TestClient, which warns about httpx on import (not used here)
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    from catalog.access import applications, staff
    from catalog.access.workdays import Calendar
    from catalog.certificates import issuing as certs
    from catalog.db import migrate, tables
    from catalog.directory import store
    from catalog.serving import tables as serving
    from tests.catalog.api_hub import CERT_TYPE, build_hub

    timings: dict[str, float] = {}
    t = time.perf_counter()
    drop: Callable[[], None] = lambda: None  # noqa: E731
    overrides: dict[str, Any] = {}
    if hub_db == "postgresql":
        url, drop = _create_pg_database()
        migrate.upgrade(url)  # what `sharehub db upgrade` does
        overrides["database_url"] = url
    elif hub_db != "sqlite":
        raise ValueError(f"hub_db must be postgresql or sqlite, not {hub_db!r}")
    try:
        hub = build_hub(tmp, **overrides)
        engine, settings = hub.engine, hub.settings
        timings["schema_and_directory_s"] = time.perf_counter() - t

        t = time.perf_counter()
        lic = store.get_dataset(engine, "SCJ-LIC")
        table = _licences(rows)
        serving.refresh(engine, lic.spec, table, run_id="bench", replace=True)
        timings["serving_rows_s"] = time.perf_counter() - t
        t = time.perf_counter()
        certs.issue(
            engine,
            lic.spec,
            lic.department,
            CERT_TYPE,
            table.slice(0, certificates),
            run_id="bench",
            signer=hub.keys.active("certificate"),
        )
        timings["certificates_s"] = time.perf_counter() - t
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(sa.text("ANALYZE"))

        app_id = hub.apps[APP][0]
        # the grants the load uses up: the grade policy's rate ceilings lifted for the benchmark
        from catalog.directory.grades import GradePolicy

        unthrottled = GradePolicy(
            {
                g: {"default_rate_limit": RATE_LIMIT, "max_rate_limit": RATE_LIMIT}
                for g in ("general", "important", "core")
            }
        )
        common: dict[str, Any] = {
            "fields": None,
            "purpose": "企业开办一件事",
            "legal_basis": "《优化营商环境条例》",
            "calendar": Calendar.from_settings(settings),
            "deadline_days": settings.working_days_deadline,
            "default_rate_limit": RATE_LIMIT,
            "policy": unthrottled,
        }
        if applications.submit(engine, app_id, "SCJ-OPEN", **common).status != "approved":
            raise RuntimeError("SCJ-OPEN application was not auto-approved")
        pending = applications.submit(engine, app_id, "SCJ-LIC", **common)
        admin = staff.create_staff(engine, ADMIN, None, ["admin"], ADMIN_PASSWORD)
        decided = applications.decide(
            engine,
            pending.id,
            admin,
            approve=True,
            rate_limit=RATE_LIMIT,
            default_rate_limit=RATE_LIMIT,
            policy=unthrottled,
        )
        if decided.status != "approved":
            raise RuntimeError(f"SCJ-LIC application was not approved: {decided.status}")

        pick = random.Random(5)
        uscc = table.column("uscc").to_pylist()
        chosen = pick.sample(uscc, min(subjects, len(uscc)))
        with engine.connect() as conn:
            idents = [
                str(i)
                for i in conn.execute(
                    sa.select(tables.certificates.c.identifier).order_by(tables.certificates.c.serial)
                ).scalars()
            ]
        pick.shuffle(idents)
        url = settings.hub_db_url
        var_dir = settings.var_dir
        hub.client.close()
        engine.dispose()
    except BaseException:
        drop()
        raise
    return Hub(url, Path(var_dir), app_id, hub.apps[APP][1], chosen, idents, drop, timings)


# ---- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(hub: Hub, token_ttl: int, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHAREHUB_")}
    env |= {
        "SHAREHUB_VAR_DIR": str(hub.var_dir.resolve()),
        "SHAREHUB_DATABASE_URL": hub.database_url,
        "SHAREHUB_TOKEN_TTL_SECONDS": str(token_ttl),
        "SHAREHUB_SECRETS_FILE": str(hub.var_dir / "no-secrets.toml"),
        "SHAREHUB_CONFIG_FILE": str(hub.var_dir / "no-config.toml"),
        # the load comes from one address: the per-address limit of public verification still
        # runs on every call (its cost is measured) but must not refuse the benchmark's calls
        "SHAREHUB_PUBLIC_VERIFY_RATE_LIMIT": "1000000000",
    }
    if redis_url:
        env["SHAREHUB_REDIS_URL"] = redis_url
    return env


def start_server(env: dict[str, str], port: int, workers: int, log_path: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "uvicorn", "sharehub.serve:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--loop", "uvloop", "--http", "sharehub.serve:HttpProtocol", "--log-level", "warning",
        "--no-access-log",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _get(url: str, timeout: float = 5.0, data: bytes | None = None) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=data)  # loopback only
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_healthy(proc: subprocess.Popen[bytes], base: str, workers: int, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering /api/v1/health")
        try:
            if _get(f"{base}/api/v1/health", 2.0)[0] == 200:
                if workers > 1:
                    time.sleep(2.0)  # let every worker finish starting
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server did not answer /api/v1/health within {timeout_s:.0f} s")


# uvicorn shuts down gracefully on SIGTERM, then re-raises the signal: -15 is a clean stop
CLEAN_EXIT = {0, -signal.SIGTERM}


def stop_server(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def get_token(base: str, client_id: str, secret: str) -> str:
    from urllib.parse import urlencode

    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    status, body = _get(f"{base}/api/v1/token", 30.0, urlencode(form).encode())
    if status != 200:
        raise RuntimeError(f"token call failed: {status} {body[:300]!r}")
    return str(json.loads(body)["access_token"])


def _cpu_of_tree(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat", encoding="ascii") as fh:
        parts = [float(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0.0)
    return sum(parts) - idle, sum(parts)


# ---- one scenario ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    paths: list[str]
    headers: dict[str, str]
    audited: bool


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run_load(
    sc: Scenario, port: int, clients: int, seconds: float, client: str, server_pid: int, tmp: Path
) -> dict[str, Any]:
    """Run one scenario in a separate load process; its raw figures plus CPU accounting."""
    spec = LoadSpec("127.0.0.1", port, sc.paths, sc.headers, clients, seconds, client)
    spec_path = tmp / f"load-{sc.name}.json"
    spec_path.write_text(json.dumps(spec.__dict__), encoding="utf-8")
    server0, (busy0, total0) = _cpu_of_tree(server_pid), _machine_cpu()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--load", str(spec_path)],
        capture_output=True,
        timeout=seconds + 300,
        check=False,
    )
    server1, (busy1, total1) = _cpu_of_tree(server_pid), _machine_cpu()
    if proc.returncode != 0:
        raise RuntimeError(f"load process failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    out_path = Path(str(spec_path) + ".out")
    out: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8"))
    out_path.unlink()
    out["server_cpu_s"] = server1 - server0
    out["machine_busy"] = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
    return out


def summarise(loads: list[dict[str, Any]], bare_rps: float | None) -> dict[str, Any]:
    """Figures of one scenario over its rounds: totals, percentiles, CPU per request."""
    lat = sorted(x / 1000.0 for o in loads for x in o["latencies_us"])
    elapsed = sum(o["elapsed_s"] for o in loads)
    n = len(lat)
    rps = n / elapsed if elapsed > 0 else 0.0
    errors: Counter[str] = Counter()
    for o in loads:
        errors.update(o["errors"])
        errors.update({f"warm-up {k}": v for k, v in o["warmup_errors"].items()})
    out: dict[str, Any] = {
        "req_per_s": round(rps, 1),
        "p50_ms": round(percentile(lat, 0.50), 2),
        "p99_ms": round(percentile(lat, 0.99), 2),
        "requests": n,
        "errors": sum(errors.values()),
        "seconds": round(elapsed, 3),
        "responses": sum(o["responses"] for o in loads),
        "rounds_req_per_s": [round(len(o["latencies_us"]) / o["elapsed_s"], 1) for o in loads],
        "server_cpu_ms_per_req": round(1000 * sum(o["server_cpu_s"] for o in loads) / n, 3) if n else 0.0,
        "client_cpu_ms_per_req": round(1000 * sum(o["client_cpu_s"] for o in loads) / n, 3) if n else 0.0,
        "machine_busy_pct": round(100 * sum(o["machine_busy"] for o in loads) / len(loads), 1),
    }
    if errors:
        out["error_kinds"] = dict(errors)
    if bare_rps is not None:
        out["ratio_to_bare"] = round(rps / bare_rps, 3) if bare_rps else 0.0
    return out


# ---- the whole benchmark ---------------------------------------------------------------------


def run(
    *,
    clients: int = 32,
    seconds: float = 10.0,
    quick: bool = False,
    hub_db: str = "postgresql",
    workers: int = WORKERS,
    rounds: int = 1,
    client: str = "raw",
    redis_url: str | None = None,
    subject_view: bool = False,
) -> dict[str, Any]:
    """Run B5/B6 and return JSON-able figures (see the module docstring).

    ``{"bare"|"records"|"verify": {"req_per_s", "p50_ms", "p99_ms", "requests", "errors", …},
    "audit": {"new_rows", "audited_responses", "match", "verify_ok"}, "settings": {…},
    "failures": [...]}``; ``records`` and ``verify`` also carry ``ratio_to_bare``. ``quick``:
    a tiny hub and 2 s per scenario (the CI smoke test). ``rounds`` > 1 runs bare, records and
    verify in turn that many times (figures over all rounds; per-round req/s kept) so that a
    burst of noise from other work on the machine hits every scenario alike.
    """
    sizes = dict(QUICK if quick else FULL)
    if quick:
        seconds = min(seconds, float(QUICK["seconds"]))
    if clients < 1 or seconds <= 0 or rounds < 1 or workers < 1:
        raise ValueError("clients, seconds, rounds and workers must be positive")
    failures: list[str] = []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sharehub-accessapi-") as tmp_s:
        tmp = Path(tmp_s)
        t0 = time.perf_counter()
        hub = prepare_hub(
            tmp,
            hub_db=hub_db,
            rows=int(sizes["rows"]),
            certificates=int(sizes["certificates"]),
            subjects=int(sizes["subjects"]),
        )
        setup_s = time.perf_counter() - t0
        try:
            results = _measure(hub, tmp, clients, seconds, workers, rounds, client, redis_url, subject_view)
        finally:
            hub.drop()
    failures += results.pop("failures")
    results["settings"] = {
        "clients": clients,
        "seconds_per_scenario": seconds,
        "rounds": rounds,
        "quick": quick,
        "hub_db": hub_db,
        "uvicorn_workers": workers,
        "uvicorn": "uvloop + httptools (sharehub.serve:HttpProtocol), --no-access-log",
        "load_client": f"{client} (separate process, keep-alive HTTP/1.1, uvloop)",
        "rate_limiter": "redis" if redis_url else "in-process memory",
        "serving_rows": sizes["rows"],
        "certificates": sizes["certificates"],
        "distinct_subjects": sizes["subjects"],
        "setup_s": round(setup_s, 1),
        "setup_timings_s": {k: round(v, 1) for k, v in hub.timings.items()},
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
    }
    results["failures"] = failures
    return results


def _measure(
    hub: Hub,
    tmp: Path,
    clients: int,
    seconds: float,
    workers: int,
    rounds: int,
    client: str,
    redis_url: str | None,
    subject_view: bool,
) -> dict[str, Any]:
    import sqlalchemy as sa

    from catalog import audit
    from catalog.db import tables

    engine = sa.create_engine(hub.database_url)
    with engine.connect() as conn:
        audit_before = int(conn.execute(sa.select(sa.func.count()).select_from(tables.audit)).scalar_one())
    engine.dispose()

    n_scenarios = 4 if subject_view else 3
    token_ttl = min(86_400, int(rounds * n_scenarios * (seconds + 30)) + 600)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp / "uvicorn.log"
    proc = start_server(server_env(hub, token_ttl, redis_url), port, workers, log_path)
    failures: list[str] = []
    loads: dict[str, list[dict[str, Any]]] = {}
    audited_responses = 0
    try:
        wait_healthy(proc, base, workers)
        token = get_token(base, hub.client_id, hub.secret)
        audited_responses += 1
        auth = {"Authorization": f"Bearer {token}", "X-End-User-Id": END_USER, "X-Case-Number": CASE_NUMBER}
        scenarios = [
            Scenario("bare", ["/api/v1/ping"], {}, audited=False),
            Scenario(
                "records",
                [f"/api/v1/datasets/SCJ-LIC/records?subject={s}" for s in hub.subjects],
                auth,
                audited=True,
            ),
            Scenario(
                "verify", [f"/api/v1/certificates/{c}/verify" for c in hub.certificates], {}, audited=True
            ),
        ]
        if subject_view:
            scenarios.append(
                Scenario("subject_view", [f"/api/v1/subjects/{s}" for s in hub.subjects], auth, audited=True)
            )
        for _ in range(rounds):
            for sc in scenarios:
                out = run_load(sc, port, clients, seconds, client, proc.pid, tmp)
                loads.setdefault(sc.name, []).append(out)
                if sc.audited:
                    audited_responses += out["responses"]
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode} during {sc.name!r}")
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        server_rc = stop_server(proc)
    server_log = log_path.read_text(encoding="utf-8", errors="replace").strip()

    results: dict[str, Any] = {}
    bare = summarise(loads["bare"], None) if "bare" in loads else None
    for name, runs in loads.items():
        results[name] = bare if name == "bare" else summarise(runs, bare["req_per_s"] if bare else 0.0)
        if results[name]["errors"]:
            failures.append(f"{name}: {results[name]['errors']} errors {results[name].get('error_kinds')}")
    for name in ("bare", "records", "verify"):  # not measured (a failure says why): zeros, not gaps
        if name not in results:
            results[name] = {"req_per_s": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "requests": 0, "errors": 0}
            if name != "bare":
                results[name]["ratio_to_bare"] = 0.0

    engine = sa.create_engine(hub.database_url)
    try:
        with engine.connect() as conn:
            audit_after = int(conn.execute(sa.select(sa.func.count()).select_from(tables.audit)).scalar_one())
        report = audit.verify(engine)
        # normal traffic raises no access anomaly (异常访问): scan the window the load just filled
        from catalog import anomalies
        from catalog.directory.grades import DEFAULT_POLICY

        scan_start = time.perf_counter()
        flagged = anomalies.scan(engine, anomalies.Thresholds(), DEFAULT_POLICY)
        scan_ms = (time.perf_counter() - scan_start) * 1000
    finally:
        engine.dispose()
    results["anomalies"] = {
        "found": len(flagged),
        "scan_ms": round(scan_ms, 1),
        "audit_rows": audit_after,
        "flags": [f"{a.app_id} {a.dataset_code} {a.kind}" for a in flagged][:10],
    }
    if flagged:
        failures.append(f"access anomalies from the benchmark's traffic: {results['anomalies']['flags']}")
    new_rows = audit_after - audit_before
    results["audit"] = {
        "new_rows": new_rows,
        "audited_responses": audited_responses,
        "match": new_rows == audited_responses,
        "verify_ok": report.ok,
        "verify_checked": report.checked,
        "verify_problems": report.problems[:20],
    }
    if new_rows != audited_responses:
        failures.append(f"audit rows {new_rows} != audited responses {audited_responses}")
    if not report.ok:
        failures.append(f"audit chain: {report.problems[:5]}")
    if server_rc not in CLEAN_EXIT:
        failures.append(f"server exit code {server_rc}")
    results["server"] = {"exit_code": server_rc, "log_tail": server_log.splitlines()[-30:]}
    results["failures"] = failures
    return results


# ---- command line ----------------------------------------------------------------------------

TARGET_RATIO, TARGET_P99_MS = 0.5, 50.0


def print_table(results: dict[str, Any]) -> None:
    head = (
        f"{'scenario':<13} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8} "
        f"{'errors':>7} {'srv ms/req':>10} {'cli ms/req':>10} {'busy %':>7}"
    )
    print(head)
    print("-" * len(head))
    for name in ("bare", "records", "verify", "subject_view"):
        r = results.get(name)
        if r is None:
            continue
        cpu = ("server_cpu_ms_per_req", "client_cpu_ms_per_req", "machine_busy_pct")
        srv, cli, busy = (r.get(k, 0.0) for k in cpu)
        print(
            f"{name:<13} {r['requests']:>9} {r['req_per_s']:>8.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{r.get('ratio_to_bare', 1.0):>8.2f} {r['errors']:>7} {srv:>10.3f} {cli:>10.3f} {busy:>7.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="load time per scenario and round")
    ap.add_argument("--clients", type=int, default=32, help="concurrent keep-alive connections")
    ap.add_argument("--quick", action="store_true", help="tiny hub, 2 s per scenario")
    ap.add_argument("--hub-db", choices=("postgresql", "sqlite"), default="postgresql")
    ap.add_argument("--workers", type=int, default=WORKERS, help="uvicorn workers")
    ap.add_argument("--rounds", type=int, default=1, help="run every scenario this many times, in turn")
    ap.add_argument("--client", choices=("raw", "aiohttp", "httpx"), default="raw", help="load client")
    ap.add_argument("--redis-url", default=None, help="shared rate-limit counters (as several workers use)")
    ap.add_argument("--subject-view", action="store_true", help="also load GET /api/v1/subjects/{id}")
    ap.add_argument("--load", metavar="SPEC", help=argparse.SUPPRESS)  # the load process
    args = ap.parse_args(argv)
    if args.load:
        return load_main(args.load)
    if args.clients < 1 or args.seconds <= 0 or args.rounds < 1 or args.workers < 1:
        ap.error("--clients, --seconds, --rounds and --workers must be positive")

    results = run(
        clients=args.clients,
        seconds=args.seconds,
        quick=args.quick,
        hub_db=args.hub_db,
        workers=args.workers,
        rounds=args.rounds,
        client=args.client,
        redis_url=args.redis_url,
        subject_view=args.subject_view,
    )
    print_table(results)
    s, a = results["settings"], results.get("audit", {})
    print(
        f"settings: hub DB {s['hub_db']}, {s['serving_rows']} licence rows, "
        f"{s['certificates']} certificates, "
        f"{s['distinct_subjects']} subjects; {s['clients']} clients ({s['load_client']}), "
        f"{s['seconds_per_scenario']:g} s x {s['rounds']} round(s); uvicorn workers={s['uvicorn_workers']}; "
        f"rate limiter {s['rate_limiter']}; {s['machine']['cpu_count']} CPUs, {s['machine']['platform']}"
    )
    if a:
        print(
            f"audit: {a['new_rows']} new rows for {a['audited_responses']} audited responses -> "
            f"{'match' if a['match'] else 'MISMATCH'}; chain verify ok={a['verify_ok']} "
            f"(checked {a['verify_checked']})"
        )
    an = results.get("anomalies")
    if an:
        print(
            f"access anomalies after the load: {an['found']} (scan of {an['audit_rows']} audit rows: "
            f"{an['scan_ms']:.0f} ms)"
        )
    rec, ver = results.get("records"), results.get("verify")
    if rec and ver:
        print(
            f"B5 records: {rec['ratio_to_bare']:.2f} of bare (target >= {TARGET_RATIO}), p99 "
            f"{rec['p99_ms']:.1f} ms (target <= {TARGET_P99_MS:g}); B6 verify: {ver['ratio_to_bare']:.2f} "
            f"of bare (target >= {TARGET_RATIO})"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for f in results["failures"]:
        print("FAIL:", f, file=sys.stderr)
    return 1 if results["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
