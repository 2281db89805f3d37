"""HTTP load on loopback with wrk: the worklist, patient search, a patient's report list, photo
upload and report PDF download, served by gunicorn against PostgreSQL with 10,000 patients and
50,000 screenings.

    .venv/bin/python bench/http_load.py [--database-url postgres://postgres@127.0.0.1:5432/ophai_bench]
        [--connections 20] [--duration 20] [--workers 4] [--rebuild]

The scratch database (default ``ophai_bench``) is created, migrated and filled with
bulk_create on the first run and reused afterwards (``--rebuild`` starts over). Each run adds
fresh draft screenings for the uploads (real fundus photos from ../shared/data, each upload
validated, stored and its AI analysis queued on the ORM broker exactly as in the clinic; no
worker runs, the queued tasks are removed afterwards) and renders one real report PDF (two
camera photos, two heatmaps) that the download requests stream through the permission check
and the audit log.

Per endpoint, wrk (Debian package ``wrk``) prints requests, errors (socket errors and HTTP
status ≥ 400), p50/p95/p99 latency and requests/s at ``--connections`` concurrent keep-alive
connections, then the same with one connection (the service time, no queueing); plus the SQL
queries of one list request on page 1 and on page 2 (they should be equal) and the largest
gunicorn worker's resident memory. Targets: p95 ≤ 100 ms for the lists, constant queries per
page. Prints figures; asserts nothing. Traffic stays on 127.0.0.1; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/ophai_bench"
PATIENTS = 10_000
RECORDS = 50_000
PATIENT_ACCOUNTS = 50
UPLOAD_RECORDS = (
    3_000  # fresh drafts per run; with 4 photos, 12,000 distinct (screening, photo) pairs
)
DOWNLOAD_REPORTS = 2_000
TARGET_P95_MS = 100
ALONE_SECONDS = 5
WARM_UP_SECONDS = 2


@dataclass
class Endpoint:
    """One measured operation: wrk cycles through `paths` (and `headers`, `bodies`)."""

    label: str
    method: str
    paths: list[str]
    headers: list[dict[str, str]]
    bodies: list[Path] = field(default_factory=list)
    list_endpoint: bool = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--duration", type=int, default=20, help="seconds per endpoint")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: apt-get install wrk (scripts/install_system_packages.sh)"
        )

    workdir = Path(tempfile.mkdtemp(prefix="ophai-bench-http-"))
    env = {
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DJANGO_ENV": "development",
        "DEBUG": "0",
        "DATABASE_URL": args.database_url,
        "OPHAI_VAR_DIR": str(workdir),
        "MEDIA_ROOT": str(workdir / "media"),
        "LOG_LEVEL": "WARNING",
        "LLM_BASE_URL": "",
        "REPORT_FINAL_TASK": "",
        "REVIEW_SIGNED_TASK": "",
    }
    os.environ.pop("REDIS_URL", None)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    create_database(args.database_url, rebuild=args.rebuild)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    fixture = populate()
    upload_ids = upload_records(fixture)
    fixture["upload_records"] = upload_ids
    fixture["download_reports"] = download_reports(fixture, workdir)
    measured = endpoints(fixture, workdir)
    queries = query_counts(measured)
    photo_sizes = ", ".join(
        f"{body.stat().st_size // 1024} KB" for endpoint in measured for body in endpoint.bodies
    )

    from django.db import connection

    connection.close()
    port = free_port()
    server = start_gunicorn(port, args.workers, env, workdir / "gunicorn.log")
    results, alone, memory = {}, {}, {}
    try:
        base = f"http://127.0.0.1:{port}"
        offsets: dict[str, int] = {}
        for endpoint in measured:
            scripts = workdir / "wrk"
            scripts.mkdir(exist_ok=True)
            script = write_wrk_script(endpoint, scripts)
            warm_up: dict[str, dict] = {}
            for count, seconds, into in (
                (2 * args.workers, WARM_UP_SECONDS, warm_up),  # every worker imports and connects
                (1, ALONE_SECONDS, alone),
                (args.connections, args.duration, results),
            ):
                offset = offsets.get(endpoint.label, 0)
                into[endpoint.label] = run_wrk(base, script, count, seconds, offset)
                # requests still in flight when wrk stops are not counted: leave a gap so no
                # later upload repeats a (screening, photo) pair
                offsets[endpoint.label] = offset + into[endpoint.label]["requests"] + 100
            memory[endpoint.label] = largest_worker_rss_mb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        cleanup(upload_ids)
        served = access_log_summary(workdir / "gunicorn.log")
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\nHTTP load (wrk) — {PATIENTS:,} patients, {RECORDS:,} screenings, PostgreSQL; "
        f"gunicorn (deploy/gunicorn.conf.py) {args.workers} workers × 4 threads; "
        f"{args.connections} connections for "
        f"{args.duration} s per endpoint; {os.cpu_count()} CPUs"
    )
    header = f"{'endpoint':<40}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>8}"
    print(header + f"{'queries p1/p2':>15}{'worker MB':>11}")
    for endpoint in measured:
        stats = results[endpoint.label]
        first, second = queries.get(endpoint.label, ("", ""))
        pages = f"{first}/{second}" if first != "" else "-"
        print(_row(endpoint.label, stats) + f"{pages:>15}{memory[endpoint.label]:>11.0f}")
    print("one connection (service time, no queueing):")
    for endpoint in measured:
        print(_row(endpoint.label, alone[endpoint.label]))
    print(
        f"uploads: real fundus photos of {photo_sizes}; each one validated, stored and its "
        "analysis queued"
    )
    print(served)
    print(f"targets: list p95 ≤ {TARGET_P95_MS} ms; the same number of queries on every page")
    print(
        f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        "(wrk and every other process share these CPUs with gunicorn and PostgreSQL)"
    )


def _row(label: str, stats: dict) -> str:
    return (
        f"{label:<40}{stats['requests']:>9}{stats['errors']:>8}{stats['p50']:>9.1f}"
        f"{stats['p95']:>9.1f}{stats['p99']:>9.1f}{stats['rps']:>8.0f}"
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
    from core.roles import Role
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


def upload_records(fixture: dict) -> list[int]:
    """Fresh draft screenings to upload to: an upload is refused once its screening is signed,
    and the same photo twice on one screening is refused as a duplicate."""
    from django.utils import timezone

    from patients.models import Patient
    from screening.models import RecordStatus, ScreeningRecord

    patients = list(Patient.objects.order_by("?")[:UPLOAD_RECORDS])
    records = ScreeningRecord.objects.bulk_create(
        ScreeningRecord(
            patient=patient,
            operator=fixture["technician"],
            screened_at=timezone.now(),
            status=RecordStatus.DRAFT,
        )
        for patient in patients
    )
    return [record.pk for record in records]


def download_reports(fixture: dict, workdir: Path) -> list[int]:
    """One real report PDF (two camera photos, two heatmaps: the heaviest a clinic produces),
    stored once; a sample of the final reports point at it so every download streams it."""
    from report_render import reviewed_record

    from reports.models import Report, ReportStatus
    from reports.services import report_generate

    record, _sizes = reviewed_record(
        DATA / "highres", technician=fixture["technician"], doctor=fixture["doctor"]
    )
    rendered = report_generate(record=record, actor=fixture["doctor"])
    fixture["pdf_bytes"] = rendered.pdf_size
    ids = list(
        Report.objects.filter(status=ReportStatus.FINAL)
        .order_by("?")
        .values_list("pk", flat=True)[:DOWNLOAD_REPORTS]
    )
    Report.objects.filter(pk__in=ids).update(pdf=rendered.pdf.name)
    return ids


def cleanup(upload_ids: list[int]) -> None:
    """Remove this run's upload screenings and the analyses they queued; the reused database
    keeps only what populate() made."""
    from django.db import connection
    from django_q.models import OrmQ

    from screening.models import ScreeningRecord

    connection.close()
    OrmQ.objects.all().delete()
    try:
        ScreeningRecord.objects.filter(pk__in=upload_ids).delete()
    except Exception as exc:  # noqa: BLE001 — a bench: say it and go on
        print(f"(upload screenings left in the scratch database: {exc})")


# --- what is measured -----------------------------------------------------------------------
def token(user) -> dict[str, str]:
    from rest_framework_simplejwt.tokens import RefreshToken

    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


def web_session(user) -> dict[str, str]:
    """Headers of a signed-in browser: the session cookie and a CSRF token, as the upload
    page's XMLHttpRequest sends them."""
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client

    client = Client()
    client.force_login(user)
    session = client.cookies["sessionid"].value
    csrf = _get_new_csrf_string()
    return {"Cookie": f"sessionid={session}; csrftoken={csrf}", "X-CSRFToken": csrf}


def upload_bodies(workdir: Path) -> tuple[list[Path], str]:
    """Multipart bodies with real fundus photos of a typical camera export, one per file."""
    boundary = f"ophai-bench-{uuid.uuid4().hex}"
    photos = sorted((DATA / "highres").glob("*.jpg"))[:4]
    if len(photos) < 4:
        raise SystemExit(f"need four JPEG photos in {DATA / 'highres'}")
    bodies = []
    for index, photo in enumerate(photos):
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="eye"\r\n\r\n'
                f"{'OD' if index % 2 == 0 else 'OS'}\r\n"
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{photo.name}"\r\nContent-Type: image/jpeg\r\n\r\n'
            ).encode()
            + photo.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        path = workdir / f"upload-{index}.body"
        path.write_bytes(body)
        bodies.append(path)
    return bodies, boundary


def endpoints(fixture: dict, workdir: Path) -> list[Endpoint]:
    from django.urls import reverse

    doctor = token(fixture["doctor"])
    technician = token(fixture["technician"])
    terms = fixture["search_terms"]
    bodies, boundary = upload_bodies(workdir)
    browser = {
        **web_session(fixture["technician"]),
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    return [
        Endpoint(
            "GET /api/v1/worklist/", "GET", ["/api/v1/worklist/"], [doctor], list_endpoint=True
        ),
        Endpoint(
            "GET /api/v1/patients/?q=…",
            "GET",
            [f"/api/v1/patients/?q={quote(term)}" for term in terms],
            [technician],
            list_endpoint=True,
        ),
        Endpoint(
            "GET /api/v1/me/reports/",
            "GET",
            ["/api/v1/me/reports/"],
            [token(user) for user in fixture["patient_users"]],
            list_endpoint=True,
        ),
        Endpoint(
            "POST …/photos/upload (web, photo)",
            "POST",
            [reverse("screening:image-upload", args=[pk]) for pk in fixture["upload_records"]],
            [browser],
            bodies=bodies,
        ),
        Endpoint(
            f"GET /api/v1/reports/…/pdf/ ({fixture['pdf_bytes'] // 1024} KB)",
            "GET",
            [f"/api/v1/reports/{pk}/pdf/" for pk in fixture["download_reports"]],
            [doctor],
        ),
    ]


def query_counts(measured: list[Endpoint]) -> dict[str, tuple[int, int]]:
    """SQL queries of one list request on page 1 and on page 2, through Django's test client."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    counts = {}
    client = Client(HTTP_HOST="localhost")
    for endpoint in measured:
        if not endpoint.list_endpoint:
            continue
        header = {f"HTTP_{key.upper()}": value for key, value in endpoint.headers[0].items()}
        first = endpoint.paths[0]
        base = first + ("&" if "?" in first else "?") + "page_size=2"
        url, pages = base, []
        for _ in range(2):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, **header)
            pages.append(len(queries))
            cursor = parse_qs(urlparse(response.json().get("next") or "").query).get("cursor")
            if not cursor:
                break
            url = f"{base}&cursor={cursor[0]}"
        counts[endpoint.label] = (pages[0], pages[-1])
    return counts


# --- gunicorn ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, env: dict, log: Path) -> subprocess.Popen:
    """gunicorn with the configuration we ship (deploy/gunicorn.conf.py: gthread, 4 threads,
    workers recycled every ~2,000 requests); its access log goes to `log`."""
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "--config",
        str(ROOT / "deploy" / "gunicorn.conf.py"),
        "clinic.wsgi:application",
    ]
    settings = {"GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers)}
    with log.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603
            command,
            cwd=ROOT,
            env={**os.environ, **env, **settings},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    # The listening socket accepts at once, but each worker loads Django before it serves:
    # wait until every worker has answered (fresh connections spread over the workers).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "Booting worker" in log.read_text(errors="replace") and _all_workers_answer(
            port, workers
        ):
            return process
        time.sleep(0.5)
    process.kill()
    raise SystemExit("gunicorn did not start within 60 s")


def _all_workers_answer(port: int, workers: int) -> bool:
    """True once `workers` × 4 fresh connections in a row are each answered within 300 ms."""
    import http.client

    for _ in range(workers * 4):
        started = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/healthz", headers={"Connection": "close"})
            connection.getresponse().read()
            connection.close()
        except OSError:
            return False
        if time.perf_counter() - started > 0.3:
            return False
    return True


def access_log_summary(log: Path) -> str:
    """What gunicorn itself logged: requests by status class and worker (re)starts."""
    statuses: dict[str, int] = {}
    boots = 0
    for line in log.read_text(errors="replace").splitlines():
        if "Booting worker" in line:
            boots += 1
        elif match := re.search(r'" (\d)\d\d ', line):
            statuses[f"{match.group(1)}xx"] = statuses.get(f"{match.group(1)}xx", 0) + 1
    counted = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
    return f"gunicorn access log: {counted}; worker processes booted: {boots}"


# --- wrk ------------------------------------------------------------------------------------
WRK_SCRIPT = """
-- generated by bench/http_load.py
local paths = %(paths)s
local headers = %(headers)s
local body_files = %(bodies)s
local bodies = {}
local method = %(method)s
counter = 0

local threads = {}
function setup(thread)
    thread:set("thread_index", #threads)
    table.insert(threads, thread)
end

function init(args)
    thread_count = tonumber(args[1])
    offset = tonumber(args[2])
    for i, name in ipairs(body_files) do
        local file = assert(io.open(name, "rb"))
        bodies[i] = file:read("*a")
        file:close()
    end
end

function request()
    -- every request of the run gets its own index, so no (path, body) pair repeats
    local i = offset + counter * thread_count + thread_index
    counter = counter + 1
    local body = nil
    if #bodies > 0 then
        body = bodies[(math.floor(i / #paths) %% #bodies) + 1]
    end
    return wrk.format(method, paths[(i %% #paths) + 1], headers[(i %% #headers) + 1], body)
end

first_error = ""
function response(status, headers, body)
    if status >= 400 and first_error == "" then
        first_error = status .. " " .. string.sub(body or "", 1, 160)
    end
end

function done(summary, latency, requests)
    for _, thread in ipairs(threads) do
        local seen = thread:get("first_error")
        if seen ~= nil and seen ~= "" then
            io.write("WRK-FIRST-ERROR " .. seen .. "\\n")
            break
        end
    end
    local errors = summary.errors
    io.write(string.format(
        'WRK-RESULT {"requests": %%d, "errors": %%d, "status_errors": %%d, "micros": %%d, ' ..
        '"p50": %%d, "p95": %%d, "p99": %%d}\\n',
        summary.requests, errors.connect + errors.read + errors.write + errors.timeout + errors.status,
        errors.status, summary.duration, latency:percentile(50), latency:percentile(95),
        latency:percentile(99)))
end
"""


def _lua(value) -> str:
    if isinstance(value, str):
        # a JSON string literal is a Lua one too, but for \u escapes: keep the characters
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in value.items()) + "}"
    return "{" + ", ".join(_lua(item) for item in value) + "}"


def write_wrk_script(endpoint: Endpoint, folder: Path) -> Path:
    script = folder / f"{len(list(folder.iterdir()))}.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "paths": _lua(endpoint.paths),
            "headers": _lua(endpoint.headers),
            "bodies": _lua([str(body) for body in endpoint.bodies]),
            "method": _lua(endpoint.method),
        }
    )
    return script


def run_wrk(base: str, script: Path, connections: int, seconds: int, offset: int) -> dict:
    threads = min(connections, 2)
    command = [
        "wrk", "--threads", str(threads), "--connections", str(connections),
        "--duration", f"{seconds}s", "--timeout", "30s", "--script", str(script),
        base, "--", str(threads), str(offset),
    ]  # fmt: skip
    finished = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    line = next(
        (row for row in finished.stdout.splitlines() if row.startswith("WRK-RESULT ")), None
    )
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{finished.stdout}\n{finished.stderr}")
    raw = json.loads(line.removeprefix("WRK-RESULT "))
    for row in finished.stdout.splitlines():
        if row.startswith("WRK-FIRST-ERROR "):
            print(f"  {script.name}: first error response: {row.removeprefix('WRK-FIRST-ERROR ')}")
    return {
        "requests": raw["requests"],
        "errors": raw["errors"],
        "p50": raw["p50"] / 1000,
        "p95": raw["p95"] / 1000,
        "p99": raw["p99"] / 1000,
        "rps": raw["requests"] / (raw["micros"] / 1e6),
    }


def largest_worker_rss_mb(master_pid: int) -> float:
    """Resident memory of the largest gunicorn worker (children of the master), from /proc."""
    largest = 0
    for child in Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split():
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except FileNotFoundError:
            continue
        for row in status.splitlines():
            if row.startswith("VmRSS:"):
                largest = max(largest, int(row.split()[1]))
    return largest / 1024


if __name__ == "__main__":
    main()
