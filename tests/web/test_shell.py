"""Login, logout, language switch, the header (role, menu) and refusals for non-staff."""

import pytest
from django.urls import reverse

from tests.factories import UserFactory


def test_the_home_page_asks_anonymous_users_to_log_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_logging_in_leads_to_the_worklist(client, technician):
    response = client.post(
        "/login/", {"username": "tech1", "password": "correct horse battery staple", "next": "/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert b"tech1" in page.content


def test_a_wrong_password_is_explained_on_the_login_page(client, technician):
    response = client.post("/login/", {"username": "tech1", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logging_out_needs_a_post_and_ends_the_session(client, technician):
    client.force_login(technician)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_the_header_shows_the_users_role_and_only_the_menu_entries_it_may_use(client, technician):
    client.force_login(technician)
    html = client.get("/").content.decode()
    assert '<span class="role-badge">Technician</span>' in html
    assert reverse("patients:create") in html
    assert reverse("statistics") not in html
    assert reverse("admin:index") not in html


def test_doctors_see_statistics_but_no_registration(client, doctor):
    client.force_login(doctor)
    html = client.get("/").content.decode()
    assert reverse("statistics") in html
    assert reverse("patients:create") not in html


def test_the_language_switch_changes_the_interface_language(client, doctor):
    client.force_login(doctor)
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert response.status_code == 302
    html = client.get("/").content.decode()
    assert '<html lang="zh-hans">' in html
    assert "医生" in html  # the role badge, translated
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert '<html lang="en">' in client.get("/").content.decode()


@pytest.mark.parametrize(
    "url",
    ["/", "/patients/", "/patients/new/", "/statistics/"],
)
def test_patient_accounts_are_refused_every_staff_page(client, db, url):
    client.force_login(UserFactory(role="patient"))
    assert client.get(url).status_code == 403
