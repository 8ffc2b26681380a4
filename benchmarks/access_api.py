"""How fast does the access API answer under concurrency, and what does the gate + audit cost?

A quick preview of the issue-5 benchmarks B5 (records / subject view throughput) and B6
(audit overhead): those use 32 clients in a separate process against a deployed hub; this one
runs everything on one machine, so the client threads compete with the server for the CPU.

Setup: the small published hub of ``tests/api_hub.py`` (embedded SQLite DB, real keys and
signed certificates) in a temp dir; the app "企业开办" gets grants on SCJ-OPEN (unconditional,
auto-approved) and SCJ-LIC (conditional, approved by a hub-wide admin), both with a rate limit
far above what the run can reach. The real server runs in a child process
(``uvicorn catalog.api:create_app --factory``, one worker) configured through ``SHAREHUB_*``
environment variables; the app takes one token with its client credentials.

Load: N client threads (each with its own keep-alive ``httpx.Client``) hammer one scenario for
S seconds, then the next:

* ``bare``: ``GET /api/v1/health``, no auth, no audit, one ``SELECT 1``: the baseline;
* ``records``: ``GET /api/v1/datasets/SCJ-LIC/records?uscc=…`` with token and purpose headers
  (token check, grant check, rate limit, masking, one audit record);
* ``subject view``: ``GET /api/v1/subjects/<uscc>`` (every granted dataset + certificates);
* ``verify``: ``GET /api/v1/certificates/<identifier>/verify`` (public, signature check, audited).

Printed per scenario: requests, req/s, p50 / p99 latency, req/s relative to ``bare``, non-2xx
responses. Afterwards the audit log must hold exactly one record per audited response (every
scenario but ``bare``, plus the token call) and ``catalog.audit.verify`` must pass.

Usage: ``.venv/bin/python benchmarks/access_api.py [--seconds 10] [--clients 16]``; exits
non-zero on errors, an audit count mismatch, a failed chain check or a server crash. The same
figures go to ``benchmarks/results/access_api.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# tests.api_hub imports FastAPI's TestClient, which warns about httpx on import (not used here)
warnings.filterwarnings("ignore", message=".*starlette.testclient.*")

from catalog import applications, audit, schema, staff  # noqa: E402
from catalog.workdays import Calendar  # noqa: E402
from tests.api_hub import USCC, ApiHub, build_hub  # noqa: E402

APP = "企业开办"
RATE_LIMIT = 1_000_000
WORKERS = 1
ADMIN, ADMIN_PASSWORD = "bench_admin", "bench-admin-password"
RESULTS = REPO / "benchmarks" / "results" / "access_api.json"


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    headers: dict[str, str]
    audited: bool


@dataclass
class Result:
    scenario: str
    requests: int
    seconds: float
    req_per_s: float
    p50_ms: float
    p99_ms: float
    ratio_to_bare: float
    errors: int
    responses: int  # every response received, warm-up included (what the audit log must hold)
    error_kinds: dict[str, int] = field(default_factory=dict)


# ---- setup ---------------------------------------------------------------------------------


def grant_app(hub: ApiHub) -> None:
    """Grants for 企业开办 on SCJ-OPEN (auto-approved) and SCJ-LIC (approved by a hub admin)."""
    engine, settings = hub.engine, hub.settings
    app_id = hub.apps[APP][0]
    calendar = Calendar.from_settings(settings)
    common: dict[str, Any] = {
        "fields": None,
        "purpose": "企业开办一件事",
        "legal_basis": "《优化营商环境条例》",
        "calendar": calendar,
        "deadline_days": settings.working_days_deadline,
        "default_rate_limit": RATE_LIMIT,
    }
    opened = applications.submit(engine, app_id, "SCJ-OPEN", **common)
    if opened.status != "approved":
        raise SystemExit(f"SCJ-OPEN application was not auto-approved: {opened.status}")
    pending = applications.submit(engine, app_id, "SCJ-LIC", **common)
    admin = staff.create_staff(engine, ADMIN, None, ["admin"], ADMIN_PASSWORD)
    decided = applications.decide(
        engine, pending.id, admin, approve=True, rate_limit=RATE_LIMIT, default_rate_limit=RATE_LIMIT
    )
    if decided.status != "approved":
        raise SystemExit(f"SCJ-LIC application was not approved: {decided.status}")


def first_certificate(engine: sa.Engine, holder: str) -> str:
    with engine.connect() as conn:
        ident = conn.execute(
            sa.select(schema.certificates.c.identifier)
            .where(schema.certificates.c.holder_id == holder)
            .order_by(schema.certificates.c.identifier)
            .limit(1)
        ).scalar_one()
    return str(ident)


def audit_rows(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.audit)).scalar_one())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(var_dir: Path, port: int, log_path: Path, token_ttl: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["SHAREHUB_VAR_DIR"] = str(var_dir.resolve())
    env["SHAREHUB_TOKEN_TTL_SECONDS"] = str(token_ttl)
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "catalog.api:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
        "--log-level",
        "warning",
    ]
    with log_path.open("wb") as log:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(proc: subprocess.Popen[bytes], base: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering /api/v1/health")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
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
    r = httpx.post(
        f"{base}/api/v1/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=30.0,
    )
    if r.status_code != 200:
        raise RuntimeError(f"token call failed: {r.status_code} {r.text[:300]}")
    return str(r.json()["access_token"])


# ---- load ----------------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
    return ordered[rank - 1]


Load = tuple[list[float], Counter[str], int, float]


def run_scenario(base: str, sc: Scenario, clients: int, seconds: float) -> Load:
    """Hammer one scenario; returns (latencies in s, error kinds, responses incl. warm-up, elapsed s)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[Counter[str]] = [Counter() for _ in range(clients)]
    responses = [0] * clients
    start = threading.Barrier(clients + 1, timeout=300.0)
    window: dict[str, float] = {}

    def worker(i: int) -> None:
        lat, err = latencies[i], errors[i]
        with httpx.Client(base_url=base, headers=sc.headers, timeout=60.0) as client:
            try:  # warm-up: open the keep-alive connection (answered and audited, not measured)
                r = client.get(sc.path)
                responses[i] += 1
                if not r.is_success:
                    err[f"warm-up {r.status_code}"] += 1
            except httpx.HTTPError as exc:
                err[f"warm-up {type(exc).__name__}"] += 1
            start.wait()
            end = window["end"]
            while True:
                t0 = time.perf_counter()
                if t0 >= end:
                    break
                try:
                    r = client.get(sc.path)
                except httpx.HTTPError as exc:
                    lat.append(time.perf_counter() - t0)
                    err[type(exc).__name__] += 1
                    continue
                lat.append(time.perf_counter() - t0)
                responses[i] += 1
                if not r.is_success:
                    err[str(r.status_code)] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    # the window starts once every client is warm; workers read window["end"] after the barrier
    while start.n_waiting < clients and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    t_start = time.perf_counter()
    window["end"] = t_start + seconds
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    all_lat = sorted(x for lat in latencies for x in lat)
    total_err: Counter[str] = Counter()
    for e in errors:
        total_err.update(e)
    return all_lat, total_err, sum(responses), elapsed


# ---- report --------------------------------------------------------------------------------


def print_table(results: list[Result]) -> None:
    head = (
        f"{'scenario':<13} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'vs bare':>8} {'errors':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.scenario:<13} {r.requests:>9} {r.req_per_s:>8.1f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} "
            f"{r.ratio_to_bare:>8.2f} {r.errors:>7}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=10.0, help="load time per scenario")
    ap.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    args = ap.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        ap.error("--clients must be >= 1 and --seconds > 0")

    failures: list[str] = []
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="sharehub-accessapi-") as tmp:
        hub = build_hub(Path(tmp))
        grant_app(hub)
        engine, settings = hub.engine, hub.settings
        cert_id = first_certificate(engine, USCC[0])
        audit_before = audit_rows(engine)
        engine.dispose()  # hold no SQLite connection while the server writes

        # the token must outlive the whole run (4 scenarios + warm-up + margin)
        token_ttl = min(86_400, max(settings.token_ttl_seconds, int(4 * args.seconds) + 300))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "uvicorn.log"
        proc = start_server(settings.var_dir, port, log_path, token_ttl)
        server_rc: int | None = None
        audited_responses = 0
        try:
            wait_healthy(proc, base)
            client_id, secret = hub.apps[APP]
            token = get_token(base, client_id, secret)
            audited_responses += 1
            auth = {
                "Authorization": f"Bearer {token}",
                "X-End-User-Id": "officer-007",
                "X-Case-Number": "QYKB-2026-000123",
            }
            scenarios = [
                Scenario("bare", "/api/v1/health", {}, audited=False),
                Scenario("records", f"/api/v1/datasets/SCJ-LIC/records?uscc={USCC[0]}", auth, audited=True),
                Scenario("subject view", f"/api/v1/subjects/{USCC[0]}", auth, audited=True),
                Scenario("verify", f"/api/v1/certificates/{cert_id}/verify", {}, audited=True),
            ]
            bare_rps = 0.0
            for sc in scenarios:
                lat, err, responses, elapsed = run_scenario(base, sc, args.clients, args.seconds)
                if proc.poll() is not None:
                    failures.append(f"server exited with {proc.returncode} during {sc.name!r}")
                rps = len(lat) / elapsed if elapsed > 0 else 0.0
                if sc.name == "bare":
                    bare_rps = rps
                if sc.audited:
                    audited_responses += responses
                n_err = sum(err.values())
                results.append(
                    Result(
                        scenario=sc.name,
                        requests=len(lat),
                        seconds=round(elapsed, 3),
                        req_per_s=round(rps, 1),
                        p50_ms=round(1000 * percentile(lat, 0.50), 2),
                        p99_ms=round(1000 * percentile(lat, 0.99), 2),
                        ratio_to_bare=round(rps / bare_rps, 3) if bare_rps else 0.0,
                        errors=n_err,
                        responses=responses,
                        error_kinds=dict(err),
                    )
                )
                if n_err:
                    failures.append(f"{sc.name}: {n_err} errors {dict(err)}")
                if failures and proc.poll() is not None:
                    break
        finally:
            server_rc = stop_server(proc)
        server_log = log_path.read_text(encoding="utf-8", errors="replace").strip()

        audit_after = audit_rows(engine)
        audit_new = audit_after - audit_before
        report = audit.verify(engine)
        engine.dispose()

    print_table(results)
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}; "
        f"settings: clients={args.clients}, seconds={args.seconds:g}, uvicorn workers={WORKERS}"
    )
    print(
        f"audit: {audit_new} new hub_audit rows for {audited_responses} audited responses "
        f"(token call + warm-up + measured, all but bare) -> "
        f"{'match' if audit_new == audited_responses else 'MISMATCH'}"
    )
    print(
        f"audit.verify: ok={report.ok}, checked={report.checked}, last_seq={report.last_seq}"
        + (f", problems={report.problems[:5]}" if report.problems else "")
    )
    clean = server_rc in CLEAN_EXIT
    print(
        f"server: exit code {server_rc} after terminate ({'clean' if clean else 'NOT CLEAN'}), "
        + ("log:" if server_log else "log empty")
    )
    if server_log:
        print("\n".join("  | " + line for line in server_log.splitlines()[-30:]))

    if audit_new != audited_responses:
        failures.append(f"audit rows {audit_new} != audited responses {audited_responses}")
    if not clean:
        failures.append(f"server exit code {server_rc}")
    if not report.ok:
        failures.append(f"audit chain: {report.problems[:5]}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "results": [asdict(r) for r in results],
                "machine": {
                    "cpu_count": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                },
                "settings": {"clients": args.clients, "seconds": args.seconds, "workers": WORKERS},
                "audit": {
                    "new_rows": audit_new,
                    "audited_responses": audited_responses,
                    "match": audit_new == audited_responses,
                    "verify_ok": report.ok,
                    "verify_checked": report.checked,
                    "verify_problems": report.problems[:20],
                },
                "server": {"exit_code": server_rc, "log_tail": server_log.splitlines()[-30:]},
                "failures": failures,
            },
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
