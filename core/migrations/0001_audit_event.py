"""The audit log's model, moved from clinic to core: state only, the table stays.

The table `clinic_auditevent`, its index and, on PostgreSQL, its append-only trigger were created
by clinic's migrations 0001, 0003 and 0008, which stay as history; this migration only tells
Django that the model now belongs to core (db_table keeps the name). clinic 0009 removes it from
clinic's state and moves its content type, so permissions and group grants keep their rows.
"""

import django.core.serializers.json
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "at",
                            models.DateTimeField(
                                db_index=True,
                                default=django.utils.timezone.now,
                                verbose_name="time",
                            ),
                        ),
                        (
                            "actor_username",
                            models.CharField(
                                blank=True, max_length=150, verbose_name="actor username"
                            ),
                        ),
                        (
                            "action",
                            models.CharField(
                                choices=[
                                    ("create", "Created"),
                                    ("update", "Changed"),
                                    ("delete", "Deleted"),
                                    ("view", "Viewed"),
                                    ("download", "Downloaded"),
                                    ("view_original", "Original file opened"),
                                    ("sign", "Signed"),
                                    ("login", "Logged in"),
                                    ("login_failed", "Login failed"),
                                ],
                                max_length=20,
                                verbose_name="action",
                            ),
                        ),
                        (
                            "object_type",
                            models.CharField(max_length=100, verbose_name="object type"),
                        ),
                        (
                            "object_id",
                            models.CharField(blank=True, max_length=64, verbose_name="object ID"),
                        ),
                        (
                            "object_repr",
                            models.CharField(blank=True, max_length=200, verbose_name="object"),
                        ),
                        (
                            "patient_ref",
                            models.CharField(
                                blank=True, db_index=True, max_length=32, verbose_name="patient ID"
                            ),
                        ),
                        (
                            "changes",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                encoder=django.core.serializers.json.DjangoJSONEncoder,
                                verbose_name="changes",
                            ),
                        ),
                        (
                            "source",
                            models.CharField(blank=True, max_length=20, verbose_name="source"),
                        ),
                        (
                            "ip_address",
                            models.GenericIPAddressField(
                                blank=True, null=True, verbose_name="IP address"
                            ),
                        ),
                        (
                            "user_agent",
                            models.CharField(blank=True, max_length=300, verbose_name="user agent"),
                        ),
                        (
                            "request_id",
                            models.CharField(blank=True, max_length=64, verbose_name="request ID"),
                        ),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="actor",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "audit event",
                        "verbose_name_plural": "audit log",
                        "db_table": "clinic_auditevent",
                        "ordering": ["-at", "-id"],
                        "indexes": [
                            models.Index(
                                fields=["object_type", "object_id"],
                                name="clinic_audi_object__8f3e91_idx",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
