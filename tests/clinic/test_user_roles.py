"""Who may change whose roles: no one their own, administrators only roles they hold,
superuser status and superusers' accounts only superusers; every change audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from core.models import AuditEvent
from core.roles import user_set_roles
from tests.factories import UserFactory


def change_form(user, **overrides) -> dict:
    """The admin's change form for `user` as posted, with `overrides`."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "is_staff": "on",
        "groups": [group.pk for group in user.groups.all()],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        # the signature image inline (core.admin.SignatureInline), left empty
        "staff_profile-TOTAL_FORMS": "0",
        "staff_profile-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def group(name: str) -> int:
    return Group.objects.get(name=name).pk


def roles_of(user) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def role_events() -> list[dict]:
    return list(
        AuditEvent.objects.filter(object_type="auth.user", action="update")
        .order_by("pk")
        .values("actor_username", "object_repr", "changes")
    )


def test_an_administrator_cannot_make_itself_superuser_or_doctor(client, admin_user):
    client.force_login(admin_user)
    url = f"/admin/auth/user/{admin_user.pk}/change/"
    page = client.get(url).content.decode()
    assert 'name="is_superuser"' not in page and 'name="user_permissions"' not in page
    assert 'name="groups"' not in page  # one's own roles are read-only

    client.post(
        url,
        change_form(
            admin_user,
            is_superuser="on",
            groups=[group("administrator"), group("doctor")],
            first_name="改名",
        ),
    )

    admin_user.refresh_from_db()
    assert (admin_user.is_superuser, roles_of(admin_user), admin_user.first_name) == (
        False,
        ["administrator"],
        "改名",
    )
    assert role_events() == []


def test_an_administrator_cannot_grant_a_role_it_does_not_hold(client, admin_user):
    clerk = UserFactory(username="clerk", role="technician")
    client.force_login(admin_user)
    response = client.post(
        f"/admin/auth/user/{clerk.pk}/change/",
        change_form(clerk, groups=[group("technician"), group("doctor")]),
    )
    assert response.status_code == 200
    assert (
        "You can grant or remove only roles you hold yourself, not: Doctor."
        in response.content.decode()
    )
    assert roles_of(clerk) == ["technician"]
    assert role_events() == []


def test_an_administrator_grants_a_role_it_holds_and_it_is_audited(client, admin_user):
    deputy = UserFactory(username="deputy", role="technician")
    client.force_login(admin_user)
    response = client.post(
        f"/admin/auth/user/{deputy.pk}/change/",
        change_form(deputy, groups=[group("technician"), group("administrator")]),
    )
    assert response.status_code == 302
    assert roles_of(deputy) == ["administrator", "technician"]
    assert role_events() == [
        {
            "actor_username": "admin1",
            "object_repr": "deputy",
            "changes": {"roles": [["technician"], ["administrator", "technician"]]},
        }
    ]


def test_an_administrator_cannot_touch_a_superusers_account(client, admin_user):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client.force_login(admin_user)
    assert client.get(f"/admin/auth/user/{root.pk}/change/").status_code == 200  # view only
    response = client.post(
        f"/admin/auth/user/{root.pk}/change/", change_form(root, is_superuser=None)
    )
    assert response.status_code == 403
    password = client.post(
        f"/admin/auth/user/{root.pk}/password/",
        {"password1": "a new long passphrase", "password2": "a new long passphrase"},
    )
    assert password.status_code == 403
    root.refresh_from_db()
    assert (root.is_superuser, root.check_password("a new long passphrase")) == (True, False)


def test_a_superuser_grants_the_doctor_role_and_superuser_status_audited(client, db):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    newcomer = UserFactory(username="newcomer", role="technician")
    client.force_login(root)
    response = client.post(
        f"/admin/auth/user/{newcomer.pk}/change/",
        change_form(newcomer, groups=[group("doctor")], is_superuser="on"),
    )
    assert response.status_code == 302
    newcomer.refresh_from_db()
    assert (roles_of(newcomer), newcomer.is_superuser) == (["doctor"], True)
    assert role_events() == [
        {
            "actor_username": "root",
            "object_repr": "newcomer",
            "changes": {"roles": [["technician"], ["doctor"]], "is_superuser": [False, True]},
        }
    ]


def test_no_one_changes_their_own_roles_even_a_superuser(db):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    with pytest.raises(PermissionDenied, match="No one can change their own roles"):
        user_set_roles(actor=root, user=root, roles={"doctor"})
    with pytest.raises(PermissionDenied):
        user_set_roles(actor=root, user=root, roles=set(), is_superuser=False)
    root.refresh_from_db()
    assert (roles_of(root), root.is_superuser) == ([], True)


def test_neither_doctors_nor_technicians_manage_roles(doctor, technician):
    for actor in (doctor, technician):
        with pytest.raises(PermissionDenied):
            user_set_roles(actor=actor, user=UserFactory(), roles={"administrator"})
    assert role_events() == []
