"""A database at the schema before the core/shell split (clinic 0008, no core) migrates to the new
layout with nothing lost: the audit rows, their content type's ID, the groups' and users' grants
and the admin log stay, the admin shows the log to whoever could read it, and on PostgreSQL the
append-only trigger still refuses changes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from core.models import AuditEvent
from core.roles import Role
from tests.clinic.test_audit import require_postgresql
from tests.factories import UserFactory

BEFORE_SPLIT = [("clinic", "0008_audit_view_original"), ("core", None)]


def migrate(targets=None):
    """Migrate the test database to `targets` (default: the latest); the state apps there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()
    return MigrationExecutor(connection)._create_project_state(with_applied_migrations=True).apps


@pytest.fixture
def before_split(transactional_db):
    """The state apps of the database migrated back to before the split; migrated forward after."""
    old = migrate(BEFORE_SPLIT)
    try:
        yield old
    finally:
        migrate()


def populate(old, *, core_type_already_there: bool) -> dict:
    """Audit rows, a role group, a custom group, a user's own grant and an admin log entry, all
    written through the models as they were before the split."""
    ContentTypeThen = old.get_model("contenttypes", "ContentType")
    PermissionThen = old.get_model("auth", "Permission")
    GroupThen = old.get_model("auth", "Group")
    UserThen = old.get_model("auth", "User")
    AuditEventThen = old.get_model("clinic", "AuditEvent")
    LogEntryThen = old.get_model("admin", "LogEntry")

    audit_type, _created = ContentTypeThen.objects.get_or_create(
        app_label="clinic", model="auditevent"
    )
    view, change = (
        PermissionThen.objects.get_or_create(
            content_type=audit_type, codename=f"{verb}_auditevent", defaults={"name": verb}
        )[0]
        for verb in ("view", "change")
    )
    if core_type_already_there:  # as post_migrate leaves it after `migrate core` alone
        early = ContentTypeThen.objects.create(app_label="core", model="auditevent")
        PermissionThen.objects.create(content_type=early, codename="view_auditevent", name="v")

    administrators, _created = GroupThen.objects.get_or_create(name=Role.ADMINISTRATOR.value)
    administrators.permissions.add(view)
    auditors = GroupThen.objects.create(name="external auditors")
    auditors.permissions.add(view, change)
    admin_user = UserThen.objects.create(username="admin-before", is_staff=True)
    admin_user.groups.add(administrators)
    auditor = UserThen.objects.create(username="auditor-before", is_staff=True)
    auditor.groups.add(auditors)
    direct = UserThen.objects.create(username="direct-before", is_staff=True)
    direct.user_permissions.add(view)

    rows = [
        AuditEventThen.objects.create(
            actor_username="doctor1",
            action=action,
            object_type="patients.patient",
            object_id=str(number),
            object_repr=f"P-2026-{number:04d}",
            patient_ref=f"P-2026-{number:04d}",
            changes={"phone": ["138", "139"], "n": number},
            source="web",
            ip_address="10.0.0.7",
        )
        for number, action in enumerate(["create", "update", "view_original", "login"], start=1)
    ]
    LogEntryThen.objects.create(
        user_id=admin_user.pk,
        content_type_id=audit_type.pk,
        object_id=str(rows[0].pk),
        object_repr="seen",
        action_flag=1,
    )
    return {
        "type_id": audit_type.pk,
        "rows": list(
            AuditEventThen.objects.order_by("pk").values_list(
                "pk", "at", "action", "object_repr", "changes", "ip_address"
            )
        ),
        "users": (admin_user.pk, auditor.pk, direct.pk),
    }


@pytest.mark.parametrize("core_type_already_there", [False, True])
def test_an_existing_database_migrates_to_core_with_rows_roles_and_grants_kept(
    before_split, client, core_type_already_there
):
    before = populate(before_split, core_type_already_there=core_type_already_there)

    migrate()

    rows = list(
        AuditEvent.objects.order_by("pk").values_list(
            "pk", "at", "action", "object_repr", "changes", "ip_address"
        )
    )
    assert rows == before["rows"]
    audit_type = ContentType.objects.get_for_model(AuditEvent)
    assert (audit_type.app_label, audit_type.model) == ("core", "auditevent")
    if not core_type_already_there:
        assert audit_type.pk == before["type_id"]
    assert not ContentType.objects.filter(app_label="clinic", model="auditevent").exists()
    assert set(
        Group.objects.get(name="external auditors").permissions.values_list(
            "content_type__app_label", "codename"
        )
    ) == {("core", "view_auditevent"), ("core", "change_auditevent")}
    administrators = Group.objects.get(name=Role.ADMINISTRATOR.value)
    assert administrators.permissions.filter(
        content_type__app_label="core", codename="view_auditevent"
    ).exists()
    assert (
        Permission.objects.filter(content_type__app_label="clinic")
        .filter(codename__endswith="_auditevent")
        .count()
        == 0
    )

    from django.contrib.admin.models import LogEntry
    from django.contrib.auth import get_user_model

    assert LogEntry.objects.get(object_repr="seen").content_type == audit_type
    for pk in before["users"]:
        user = get_user_model().objects.get(pk=pk)
        assert user.has_perm("core.view_auditevent"), user.username
        client.force_login(user)
        page = client.get("/admin/core/auditevent/")
        assert page.status_code == 200, user.username
        assert "P-2026-0003" in page.content.decode()


def test_a_role_group_made_while_the_model_was_clinics_gets_its_core_permission(
    before_split, client
):
    """A new database's role groups are made (clinic 0002) before the model moves, when
    ROLE_PERMISSIONS' `core.view_auditevent` names nothing yet: the move grants it."""
    GroupThen = before_split.get_model("auth", "Group")
    GroupThen.objects.filter(name=Role.ADMINISTRATOR.value).delete()
    GroupThen.objects.create(name=Role.ADMINISTRATOR.value)

    migrate()

    admin = UserFactory(role="administrator", username="admin-new")
    assert admin.has_perm("core.view_auditevent")
    client.force_login(admin)
    assert client.get("/admin/core/auditevent/").status_code == 200


def test_postgresql_still_refuses_changes_to_moved_rows(before_split):
    require_postgresql()
    row = populate(before_split, core_type_already_there=False)["rows"][0]
    migrate()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'clinic_auditevent_append_only'"
        )
        assert cursor.fetchone() == (1,)
    for change in (
        lambda: AuditEvent.objects.filter(pk=row[0]).update(action="delete"),
        lambda: AuditEvent.objects.filter(pk=row[0]).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            change()
    assert AuditEvent.objects.get(pk=row[0]).action == "create"


def test_the_audit_logs_old_admin_addresses_lead_to_the_new_ones(db, client, admin_user):
    client.force_login(admin_user)
    listing = client.get("/admin/clinic/auditevent/?action__exact=login", follow=True)
    assert listing.redirect_chain == [("/admin/core/auditevent/?action__exact=login", 301)]
    assert listing.status_code == 200
    event = AuditEvent.objects.create(action="login", object_type="auth.user", object_id="1")
    detail = client.get(f"/admin/clinic/auditevent/{event.pk}/change/")
    assert (detail.status_code, detail["Location"]) == (
        301,
        f"/admin/core/auditevent/{event.pk}/change/",
    )
