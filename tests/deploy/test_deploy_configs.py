"""The shipped deployment files, exercised: systemd units verify, and nginx + gunicorn serve the
app over HTTPS with private media handed over by X-Accel-Redirect."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

from core.models import AuditEvent
from tests.conftest import REPO_ROOT, REQUIRE_SERVICES, fundus_like_jpeg

DEPLOY = REPO_ROOT / "deploy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        if REQUIRE_SERVICES:
            pytest.fail(
                f"{program} is required in CI (scripts/install_system_packages.sh installs it)"
            )
        pytest.skip(f"{program} is not installed")
    return path


def test_systemd_units_verify(tmp_path):
    analyze = require("systemd-analyze")
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        rendered = tmp_path / unit.name
        rendered.write_text(unit.read_text().replace("/srv/ophai/app", str(REPO_ROOT)))
        units.append(str(rendered))
    assert [Path(u).name for u in units] == [
        "ophai-ai-worker.service",
        "ophai-web.service",
        "ophai-worker.service",
    ]
    result = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@pytest.mark.parametrize("unit", ["ophai-worker.service", "ophai-ai-worker.service"])
def test_worker_units_send_sigterm_to_the_main_process_only(unit):
    # django-q2 never exits when its children get the SIGTERM too (tests/reliability/test_worker_stop.py).
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read(DEPLOY / "systemd" / unit)
    assert (parser["Service"]["KillMode"], parser["Service"]["KillSignal"]) == ("mixed", "SIGTERM")


def test_nginx_sets_x_forwarded_for_and_the_example_trusts_exactly_it():
    # Appending ($proxy_add_x_forwarded_for) would keep what the client wrote in front of it.
    template = (DEPLOY / "nginx" / "ophai.conf.template").read_text()
    headers = [
        line.split(None, 2)[2]
        for line in template.splitlines()
        if line.strip().startswith("proxy_set_header X-Forwarded-For")
    ]
    assert headers == ["$remote_addr;"]
    example = (DEPLOY / "systemd" / "ophai.env.example").read_text().splitlines()
    assert "TRUSTED_PROXY_COUNT=1" in example


def wait_until_listening(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"process exited with {process.returncode}"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_nginx_and_gunicorn_serve_the_app_and_private_media(tmp_path, transactional_roles):
    if connection.vendor != "postgresql":
        if REQUIRE_SERVICES:
            pytest.fail("this test runs on PostgreSQL in CI")
        pytest.skip("gunicorn shares the test database only on PostgreSQL")
    nginx = require("nginx")
    openssl = require("openssl")
    envsubst = require("envsubst")
    from tests.factories import PatientFactory, ScreeningRecordFactory, UserFactory

    media, static = tmp_path / "media", tmp_path / "static"
    (media / "fundus").mkdir(parents=True)
    (static / "clinic").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "static" / "clinic" / "clinic.css", static / "clinic" / "clinic.css")
    photo = fundus_like_jpeg(seed=4)
    (media / "fundus" / "p.jpg").write_bytes(photo)
    doctor = UserFactory(role="doctor", username="drdeploy")
    # Hashed for production settings (the test settings use a fast hasher gunicorn does not know).
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    doctor.password = PBKDF2PasswordHasher().encode(
        "correct horse battery staple", "deploysalt123456"
    )
    doctor.save(update_fields=["password"])
    record = ScreeningRecordFactory(patient=PatientFactory())
    image = record.images.create(
        eye="OD",
        file="fundus/p.jpg",
        sha256="0" * 64,
        width=320,
        height=320,
        format="JPEG",
        mode="RGB",
        size_bytes=len(photo),
        uploaded_by=doctor,
    )

    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.crt")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    web_port, http_port, https_port = free_port(), free_port(), free_port()
    site_env = {
        "OPHAI_SERVER_NAME": "localhost",
        "OPHAI_HTTP_PORT": str(http_port),
        "OPHAI_HTTPS_PORT": str(https_port),
        "OPHAI_UPSTREAM": f"127.0.0.1:{web_port}",
        "OPHAI_STATIC_ROOT": str(static),
        "OPHAI_MEDIA_ROOT": str(media),
        "OPHAI_TLS_CERT": str(tmp_path / "tls.crt"),
        "OPHAI_TLS_KEY": str(tmp_path / "tls.key"),
    }
    variables = " ".join(f"${name}" for name in site_env)
    rendered = subprocess.run(
        [envsubst, variables], input=(DEPLOY / "nginx" / "ophai.conf.template").read_text(),
        capture_output=True, text=True, check=True, env={**os.environ, **site_env},
    ).stdout  # fmt: skip
    assert "${" not in rendered
    (tmp_path / "ophai.conf").write_text(rendered)
    (tmp_path / "nginx.conf").write_text(
        f"""user root;
worker_processes 1;
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log {tmp_path}/nginx-access.log;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    include {tmp_path}/ophai.conf;
}}
"""
    )
    syntax = subprocess.run(
        [nginx, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert syntax.returncode == 0, syntax.stderr

    db = connection.settings_dict
    app_env = {
        **{k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL"}},
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        "DJANGO_ENV": "production",
        "SECRET_KEY": "deploy-test-" + "s3cr3t-K3y-" * 6,
        "ALLOWED_HOSTS": "localhost",
        "REPORT_VERIFY_BASE_URL": f"https://localhost:{https_port}",
        "CSRF_TRUSTED_ORIGINS": f"https://localhost:{https_port}",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "MEDIA_ROOT": str(media),
        "STATIC_ROOT": str(static),
        "MEDIA_X_ACCEL_PREFIX": "/protected-media/",
        "GUNICORN_BIND": f"127.0.0.1:{web_port}",
        "WEB_CONCURRENCY": "2",
    }
    gunicorn = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", str(DEPLOY / "gunicorn.conf.py"), "clinic.wsgi"],
        cwd=REPO_ROOT, env=app_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    proxy = subprocess.Popen(
        [nginx, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    base = f"https://localhost:{https_port}"
    try:
        wait_until_listening(web_port, gunicorn)
        wait_until_listening(https_port, proxy)
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override `verify`
        session.verify = str(tmp_path / "tls.crt")

        health = session.get(f"{base}/healthz", timeout=30)
        assert health.status_code == 200 and health.json()["checks"]["database"]["ok"] is True
        assert health.headers["X-Request-ID"]

        redirect = requests.get(
            f"http://localhost:{http_port}/healthz", allow_redirects=False, timeout=10
        )
        assert (redirect.status_code, redirect.headers["Location"]) == (301, f"{base}/healthz")

        assert session.get(f"{base}/static/clinic/clinic.css", timeout=10).text.startswith(
            "/* OphAI Clinic"
        )
        assert session.get(f"{base}/protected-media/fundus/p.jpg", timeout=10).status_code == 404
        anonymous = session.get(
            f"{base}/screening/images/{image.pk}/file", allow_redirects=False, timeout=10
        )
        assert anonymous.status_code == 302

        session.get(f"{base}/login/", timeout=10)
        login = session.post(
            f"{base}/login/",
            data={
                "username": "drdeploy",
                "password": "correct horse battery staple",
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            # nginx replaces what a client claims; the audit log keeps the address nginx saw
            headers={"Referer": f"{base}/login/", "X-Forwarded-For": "203.0.113.66"},
            allow_redirects=False,
            timeout=10,
        )
        assert login.status_code == 302, login.text[:500]
        signed_in = AuditEvent.objects.get(action="login", actor_username="drdeploy")
        assert signed_in.ip_address == "127.0.0.1"
        served = session.get(f"{base}/screening/images/{image.pk}/file", timeout=10)
        assert served.status_code == 200
        # The sanitised copy (made on this first view), never the bytes as uploaded.
        image.refresh_from_db()
        assert served.content == (media / image.sanitized_file.name).read_bytes() != photo
        assert "X-Accel-Redirect" not in served.headers
        assert served.headers["Cache-Control"] == "private, no-store"
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        print(
            f"[deploy] nginx {https_port} → gunicorn {web_port}: healthz, TLS redirect, static, private media via X-Accel-Redirect"
        )
    finally:
        for process in (proxy, gunicorn):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
