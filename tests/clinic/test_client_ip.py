"""The client's address: one function (core.context.client_ip) driven by TRUSTED_PROXY_COUNT
decides it for the audit log, django-axes, the API throttles and the WeChat binding limits.

Behind the shipped nginx every request arrives from 127.0.0.1 and nginx *sets*
X-Forwarded-For to the address it saw, so a client can only write addresses to the left of it.
"""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from core.context import client_ip
from core.models import AuditEvent
from tests.clinic.test_settings_and_commands import PRODUCTION_ENV, manage

PASSWORD = "correct horse battery staple"
NGINX = "127.0.0.1"


def request_from(remote_addr: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote_addr, **extra)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),  # no proxy trusted: the header is the client's word
        (0, None, "10.0.0.1"),
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # what a client wrote is left of it
        (1, "6.6.6.6,203.0.113.9", "203.0.113.9"),
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        (2, "203.0.113.9", "203.0.113.9"),  # fewer entries than proxies: the left-most
        (1, None, "10.0.0.1"),
        (1, "", "10.0.0.1"),
        (1, "2001:db8::7", "2001:db8::7"),
        (1, "6.6.6.6, not-an-address", "10.0.0.1"),  # never stored or counted as is
        (1, "6.6.6.6, 203.0.113.9:4711", "10.0.0.1"),
    ],
)
def test_the_client_is_the_nth_address_from_the_right(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    assert client_ip(request_from("10.0.0.1", forwarded)) == expected


def test_the_audit_log_records_the_address_nginx_saw_not_the_one_the_client_wrote(
    client, doctor, patient, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    client.force_login(doctor)

    client.get(
        f"/admin/patients/patient/{patient.pk}/change/",
        REMOTE_ADDR=NGINX,
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9",
    )

    assert AuditEvent.objects.get(action="view").ip_address == "203.0.113.9"


def test_without_a_trusted_proxy_the_audit_log_ignores_the_header(
    client, doctor, patient, settings
):
    settings.TRUSTED_PROXY_COUNT = 0
    client.force_login(doctor)

    client.get(
        f"/admin/patients/patient/{patient.pk}/change/",
        REMOTE_ADDR="10.1.2.3",
        HTTP_X_FORWARDED_FOR="6.6.6.6",
    )

    assert AuditEvent.objects.get(action="view").ip_address == "10.1.2.3"


def sign_in(client, password: str, *, forwarded: str):
    return client.post(
        "/login/",
        {"username": "doctor1", "password": password},
        REMOTE_ADDR=NGINX,
        HTTP_X_FORWARDED_FOR=forwarded,
    )


def test_axes_locks_out_the_real_client_whatever_it_writes_in_the_header(client, doctor, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    statuses = [
        sign_in(client, "wrong", forwarded=f"6.6.6.{i}, 203.0.113.9").status_code for i in range(5)
    ]
    locked = sign_in(client, PASSWORD, forwarded="7.7.7.7, 203.0.113.9")

    assert statuses == [200, 200, 200, 200, 429]
    assert locked.status_code == 429
    assert not AuditEvent.objects.filter(action="login").exists()


def test_axes_keeps_two_clients_behind_nginx_apart(client, doctor, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(5):
        sign_in(client, "wrong", forwarded="203.0.113.9")

    other = sign_in(client, PASSWORD, forwarded="198.51.100.4")

    assert other.status_code == 302
    event = AuditEvent.objects.get(action="login")
    assert (event.actor, event.ip_address) == (doctor, "198.51.100.4")


PRINT_PROXY_SETTINGS = (
    "from django.conf import settings as s; "
    "print(s.TRUSTED_PROXY_COUNT, s.REST_FRAMEWORK['NUM_PROXIES'], s.AXES_CLIENT_IP_CALLABLE)"
)


@pytest.mark.parametrize(
    ("env", "printed"),
    [
        ({}, "1 1 core.context.client_ip"),  # behind the shipped nginx
        ({"TRUSTED_PROXY_COUNT": "2"}, "2 2 core.context.client_ip"),
        ({"TRUSTED_PROXY_COUNT": "0"}, "0 0 core.context.client_ip"),
    ],
)
def test_one_setting_drives_drf_and_axes(env, printed):
    result = manage("shell", "-c", PRINT_PROXY_SETTINGS, env={**PRODUCTION_ENV, **env})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == printed


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRUSTED_PROXY_COUNT": "-1"}, "TRUSTED_PROXY_COUNT must be 0 or more, not -1"),
        (
            {"TRUST_X_FORWARDED_FOR": "1"},
            "TRUST_X_FORWARDED_FOR was replaced by TRUSTED_PROXY_COUNT",
        ),
    ],
)
def test_a_wrong_or_retired_proxy_setting_refuses_to_start(env, message):
    result = manage("check", env={**PRODUCTION_ENV, **env})
    assert result.returncode != 0
    assert message in result.stderr
