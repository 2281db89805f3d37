from django.db import migrations, models
from django.db.models import F


def number_existing_reviews(apps, schema_editor):
    """Existing reviews get revisions that increase with the version: 2v-1 open, 2v signed."""
    DoctorReview = apps.get_model("screening", "DoctorReview")
    DoctorReview.objects.update(revision=F("version") * 2)
    DoctorReview.objects.filter(signed_at__isnull=True).update(revision=F("version") * 2 - 1)


class Migration(migrations.Migration):
    dependencies = [
        ("screening", "0002_verbose_names"),
    ]

    operations = [
        migrations.AddField(
            model_name="doctorreview",
            name="revision",
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name="revision"),
        ),
        migrations.RunPython(number_existing_reviews, migrations.RunPython.noop),
    ]
