"""The permission matrix: each role may do exactly what its job needs."""

import pytest
from django.contrib.auth.models import Group

from core.roles import ROLE_PERMISSIONS, Role, user_role_labels, user_roles
from tests.factories import UserFactory

ACTIONS = {
    "register patient": "patients.add_patient",
    "edit patient": "patients.change_patient",
    "delete patient": "patients.delete_patient",
    "view patient": "patients.view_patient",
    "create screening": "screening.add_screeningrecord",
    "upload photo": "screening.add_fundusimage",
    "write review": "screening.change_doctorreview",
    "sign review": "screening.sign_doctorreview",
    "read audit log": "core.view_auditevent",
    "manage users": "auth.change_user",
}
EXPECTED = {
    "administrator": set(ACTIONS) - {"write review", "sign review"},
    "doctor": {"view patient", "write review", "sign review"},
    "technician": {
        "register patient",
        "edit patient",
        "view patient",
        "create screening",
        "upload photo",
    },
    "patient": set(),
}


@pytest.mark.parametrize("role", list(EXPECTED))
def test_each_role_holds_exactly_its_permissions(db, role):
    user = UserFactory(role=role)
    allowed = {action for action, permission in ACTIONS.items() if user.has_perm(permission)}
    assert allowed == EXPECTED[role]


def test_the_data_migration_created_every_role_group(db):
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLE_PERMISSIONS)


def test_roles_and_their_labels(db):
    doctor = UserFactory(role="doctor")
    assert user_roles(doctor) == {"doctor"}
    assert user_role_labels(doctor) == ["Doctor"]
    superuser = UserFactory(is_superuser=True)
    assert user_roles(superuser) == {Role.ADMINISTRATOR}


def test_staff_roles_reach_the_admin_and_patients_do_not(db):
    assert UserFactory(role="technician").is_staff is True
    assert UserFactory(role="patient").is_staff is False


def test_syncing_with_the_live_registry_leaves_it_intact(db):
    from django.apps import apps

    from core.roles import sync_role_groups

    before = {config.label: config.models_module for config in apps.get_app_configs()}
    sync_role_groups(apps)
    assert {config.label: config.models_module for config in apps.get_app_configs()} == before
