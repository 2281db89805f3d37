"""REST API under load: the worklist, patient search and a patient's me/reports, served by
gunicorn on loopback against PostgreSQL with 10,000 patients and 50,000 screenings.

    .venv/bin/python bench/api_load.py [--database-url postgres://postgres@127.0.0.1:5432/ophai_bench]
        [--clients 20] [--requests 1000] [--workers 4] [--rebuild]

The scratch database (default ``ophai_bench``) is created, migrated and filled with
bulk_create on the first run and reused afterwards (``--rebuild`` starts over). Per endpoint:
p50/p95 latency and requests/s at ``--clients`` concurrent keep-alive clients, plus the SQL
queries of one list request on page 1 and on page 2 (they should be equal). Targets: p95 ≤
100 ms, constant queries per page. Prints figures; asserts nothing. Traffic stays on
127.0.0.1 and every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/ophai_bench"
PATIENTS = 10_000
RECORDS = 50_000
PATIENT_ACCOUNTS = 50
TARGET_P95_MS = 100
TIME_LIMIT_S = 120  # per endpoint, whatever --requests says


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000, help="per endpoint, all clients")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ophai-bench-api-"))
    env = {
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DJANGO_ENV": "development",
        "DEBUG": "0",
        "DATABASE_URL": args.database_url,
        "OPHAI_VAR_DIR": str(workdir),
        "MEDIA_ROOT": str(workdir / "media"),
        "LOG_LEVEL": "WARNING",
        "FUNDUS_ANALYSIS_TASK": "",
        "REPORT_FINAL_TASK": "",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    create_database(args.database_url, rebuild=args.rebuild)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    fixture = populate()
    queries = query_counts(fixture)

    port = free_port()
    server = start_gunicorn(port, args.workers, env)
    try:
        base = f"http://127.0.0.1:{port}"
        results, alone = {}, {}
        for label, path, headers in endpoints(fixture):
            # one client first: the service time of a request with no queueing in front of it
            alone[label] = load(base, path, headers, 1, min(args.requests, 200))
            results[label] = load(base, path, headers, args.clients, args.requests)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()

    print(
        f"\nREST API load — {PATIENTS:,} patients, {RECORDS:,} screenings, PostgreSQL; "
        f"gunicorn {args.workers} workers; {args.clients} concurrent clients; {os.cpu_count()} CPUs"
    )
    print(
        f"{'endpoint':<34}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'req/s':>9}"
        f"{'queries p1/p2':>15}"
    )
    for label, stats in results.items():
        first, second = queries[label]
        print(
            f"{label:<34}{stats['count']:>9}{stats['errors']:>8}{stats['p50']:>9.1f}"
            f"{stats['p95']:>9.1f}{stats['rps']:>9.0f}{f'{first}/{second}':>15}"
        )
    print("one client at a time (service time, no queueing):")
    for label, stats in alone.items():
        print(
            f"  {label:<32}{stats['count']:>9}{stats['errors']:>8}{stats['p50']:>9.1f}"
            f"{stats['p95']:>9.1f}{stats['rps']:>9.0f}"
        )
    print(f"targets: p95 ≤ {TARGET_P95_MS} ms; the same number of queries on every page")
    print(
        f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        "(other processes on the machine inflate every figure)"
    )


# --- database -------------------------------------------------------------------------------
def create_database(url: str, *, rebuild: bool) -> None:
    import psycopg2
    from psycopg2 import sql

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = psycopg2.connect(
        host=parsed.hostname,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        dbname="postgres",
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        if rebuild:
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()


def populate() -> dict:
    """Fill the scratch database once (bulk_create; about a minute) and return what the load
    needs: staff users, patient accounts and search terms."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone

    from ai_engine.models import RecordTriage
    from clinic.roles import Role
    from patients.models import Patient, PatientAccount
    from reports.models import Report, ReportStatus
    from screening.models import DoctorReview, RecordStatus, ScreeningRecord

    User = get_user_model()
    doctor, _ = User.objects.get_or_create(username="bench-doctor", defaults={"is_staff": True})
    doctor.groups.add(Group.objects.get(name=Role.DOCTOR))
    technician, _ = User.objects.get_or_create(username="bench-tech", defaults={"is_staff": True})
    technician.groups.add(Group.objects.get(name=Role.TECHNICIAN))

    if Patient.objects.count() < PATIENTS:
        started = time.perf_counter()
        rng = random.Random(7)
        now = timezone.now()
        surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
        given = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英"
        with transaction.atomic():
            patients = Patient.objects.bulk_create(
                Patient(
                    patient_id=f"B{n:08d}",
                    name=rng.choice(surnames) + rng.choice(given) + rng.choice(given),
                    sex=rng.choice(["male", "female"]),
                    date_of_birth=dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(25_000)),
                    phone=f"13{rng.randrange(10**9):09d}",
                    created_by=technician,
                    created_at=now - dt.timedelta(minutes=PATIENTS - n),
                )
                for n in range(PATIENTS)
            )
            # A clinic's history is mostly reported visits; about 1,000 wait for a doctor.
            statuses, weights = zip(
                (RecordStatus.REPORTED, 95),
                (RecordStatus.ANALYSED, 2),
                (RecordStatus.REVIEWED, 2),
                (RecordStatus.DRAFT, 1),
                strict=True,
            )
            records = ScreeningRecord.objects.bulk_create(
                ScreeningRecord(
                    patient=patients[n % PATIENTS],
                    operator=technician,
                    screened_at=now - dt.timedelta(minutes=5 * (RECORDS - n)),
                    va_od="0.80",
                    va_os="1.00",
                    logmar_od="0.10",
                    logmar_os="0.00",
                    iop_od="15.0",
                    iop_os=str(rng.choice(["14.0", "18.5", "23.0"])),
                    status=rng.choices(statuses, weights)[0],
                )
                for n in range(RECORDS)
            )
            RecordTriage.objects.bulk_create(
                RecordTriage(
                    record=record,
                    level=level,
                    priority=priority,
                    reasons=[
                        {
                            "code": "referable_finding",
                            "eye": "OD",
                            "params": {
                                "label_zh": "糖尿病视网膜病变",
                                "label_en": "Diabetic retinopathy",
                                "probability": "0.83",
                            },
                        }
                    ],
                )
                for record in records
                if record.status == RecordStatus.ANALYSED
                for level, priority in [rng.choice([("urgent", 3), ("high", 2), ("routine", 1)])]
            )
            reported = [r for r in records if r.status == RecordStatus.REPORTED]
            DoctorReview.objects.bulk_create(
                DoctorReview(
                    record=record,
                    doctor=doctor,
                    conclusion_codes=["normal"],
                    recommendation="routine",
                    follow_up_date=timezone.localdate(now) + dt.timedelta(days=365),
                    signed_at=record.screened_at + dt.timedelta(hours=1),
                )
                for record in reported
            )
            Report.objects.bulk_create(
                Report(
                    record=record,
                    version=1,
                    status=ReportStatus.FINAL,
                    review_version=1,
                    summary_final="您于近期进行了眼底筛查，未见明显异常。",
                    summary_source="template",
                    pdf=f"reports/bench/{record.pk}.pdf",
                    pdf_sha256="0" * 64,
                    generated_at=record.screened_at + dt.timedelta(hours=1),
                )
                for record in reported
            )
        print(f"populated in {time.perf_counter() - started:.0f} s", flush=True)
    # Fresh planner statistics: right after bulk inserts PostgreSQL misjudges every filter.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    patient_group = Group.objects.get(name=Role.PATIENT)
    accounts = list(PatientAccount.objects.select_related("user")[:PATIENT_ACCOUNTS])
    if len(accounts) < PATIENT_ACCOUNTS:
        for patient in Patient.objects.order_by("pk")[:PATIENT_ACCOUNTS]:
            user, _ = User.objects.get_or_create(username=f"bench-wx-{patient.pk}")
            user.groups.add(patient_group)
            PatientAccount.objects.get_or_create(
                user=user, patient=patient, defaults={"wechat_openid": f"bench-openid-{patient.pk}"}
            )
        accounts = list(PatientAccount.objects.select_related("user")[:PATIENT_ACCOUNTS])
    phones = list(Patient.objects.order_by("?").values_list("phone", flat=True)[:200])
    names = list(Patient.objects.order_by("?").values_list("name", flat=True)[:200])
    return {
        "doctor": doctor,
        "technician": technician,
        "patient_users": [account.user for account in accounts],
        "search_terms": [phone[-4:] for phone in phones] + [name[:2] for name in names],
    }


# --- what is measured -----------------------------------------------------------------------
def token(user) -> dict[str, str]:
    from rest_framework_simplejwt.tokens import RefreshToken

    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


def endpoints(fixture: dict) -> list[tuple[str, object, object]]:
    """(label, path or path-maker, headers or headers-maker) per measured operation."""
    doctor = token(fixture["doctor"])
    technician = token(fixture["technician"])
    patients = [token(user) for user in fixture["patient_users"]]
    terms = fixture["search_terms"]
    return [
        ("GET /api/v1/worklist/", lambda i: "/api/v1/worklist/", lambda i: doctor),
        (
            "GET /api/v1/patients/?q=…",
            lambda i: f"/api/v1/patients/?q={terms[i % len(terms)]}",
            lambda i: technician,
        ),
        (
            "GET /api/v1/me/reports/",
            lambda i: "/api/v1/me/reports/",
            lambda i: patients[i % len(patients)],
        ),
    ]


def query_counts(fixture: dict) -> dict[str, tuple[int, int]]:
    """SQL queries of one request on page 1 and on page 2, through Django's test client."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    counts = {}
    client = Client(HTTP_HOST="localhost")
    for label, path, headers in endpoints(fixture):
        header = {f"HTTP_{key.upper()}": value for key, value in headers(0).items()}
        base = path(0) + ("&" if "?" in path(0) else "?") + "page_size=2"
        url, pages = base, []
        for _ in range(2):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, **header)
            pages.append(len(queries))
            cursor = parse_qs(urlparse(response.json().get("next") or "").query).get("cursor")
            if not cursor:
                break
            url = f"{base}&cursor={cursor[0]}"
        counts[label] = (pages[0], pages[-1])
    return counts


# --- gunicorn and the clients ---------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, env: dict) -> subprocess.Popen:
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "clinic.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})  # noqa: S603
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                time.sleep(1.0)  # let every worker finish importing
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("gunicorn did not start within 60 s")


def load(base: str, path, headers, clients: int, total: int) -> dict:
    import requests

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))
    deadline = time.monotonic() + TIME_LIMIT_S

    # warm-up: a few requests per worker so imports and connections are not measured
    with requests.Session() as session:
        for i in range(10):
            session.get(base + path(i), headers=headers(i), timeout=30)

    def client() -> None:
        nonlocal errors
        with requests.Session() as session:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                started = time.perf_counter()
                response = session.get(base + path(i), headers=headers(i), timeout=30)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        errors += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "count": len(latencies),
        "errors": errors,
        "p50": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "rps": len(latencies) / wall,
    }


if __name__ == "__main__":
    main()
