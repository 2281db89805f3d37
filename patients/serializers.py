"""Output serializers of patients shared by several API views (inputs live with their view)."""

from __future__ import annotations

from rest_framework import serializers

from patients.models import Patient


class PatientListOutputSerializer(serializers.ModelSerializer):
    """A search result: identifiers masked, always."""

    age = serializers.IntegerField(read_only=True)
    phone_masked = serializers.CharField(source="masked_phone", read_only=True)
    national_id_masked = serializers.CharField(source="masked_national_id", read_only=True)

    class Meta:
        model = Patient
        fields = (
            "patient_id",
            "name",
            "sex",
            "date_of_birth",
            "age",
            "phone_masked",
            "national_id_masked",
            "created_at",
        )


class PatientDetailOutputSerializer(PatientListOutputSerializer):
    """One patient; full phone and ID number only for staff allowed to change patients."""

    phone = serializers.SerializerMethodField()
    national_id = serializers.SerializerMethodField()

    class Meta(PatientListOutputSerializer.Meta):
        fields = (
            *PatientListOutputSerializer.Meta.fields,
            "phone",
            "national_id",
            "notes",
            "updated_at",
        )

    def _full_identifiers(self) -> bool:
        return bool(self.context.get("full_identifiers"))

    def get_phone(self, patient: Patient) -> str | None:
        return patient.phone if self._full_identifiers() else None

    def get_national_id(self, patient: Patient) -> str | None:
        return patient.national_id if self._full_identifiers() else None


class PatientBriefSerializer(serializers.ModelSerializer):
    """The patient as shown inside a screening record or the worklist (masked)."""

    age = serializers.IntegerField(read_only=True)
    phone_masked = serializers.CharField(source="masked_phone", read_only=True)

    class Meta:
        model = Patient
        fields = ("patient_id", "name", "sex", "age", "phone_masked")
