"""REST API of patients (staff): search, register, read and correct.

Lists always mask phone and ID numbers; the detail shows them in full only to staff who may
change patients (technicians, administrators). Every list page and every detail read is audited.
"""

from __future__ import annotations

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from core.api import (
    AuditedListMixin,
    HasRequiredPermissions,
    NameField,
    StrictCharField,
    error_responses,
    service_errors,
)
from patients.models import Patient, Sex
from patients.selectors import patient_search
from patients.serializers import PatientDetailOutputSerializer, PatientListOutputSerializer
from patients.services import patient_create, patient_record_view, patient_update


def full_identifiers_allowed(user) -> bool:
    return user.has_perm("patients.change_patient")


def detail_response(request, patient: Patient, *, status_code: int = status.HTTP_200_OK):
    context = {"full_identifiers": full_identifiers_allowed(request.user)}
    return Response(
        PatientDetailOutputSerializer(patient, context=context).data, status=status_code
    )


class PatientFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search",
        label=(
            "Patient ID, name, name in pinyin or its initials (zxy), phone or ID number "
            "(or their last 4+ digits)"
        ),
    )
    sex = django_filters.ChoiceFilter(choices=Sex.choices)
    born_after = django_filters.DateFilter(field_name="date_of_birth", lookup_expr="gte")
    born_before = django_filters.DateFilter(field_name="date_of_birth", lookup_expr="lte")

    class Meta:
        model = Patient
        fields = ("q", "sex", "born_after", "born_before")

    def search(self, queryset, name, value):
        return queryset & patient_search(query=value)


class PatientInputSerializer(serializers.Serializer):
    name = NameField(max_length=100)
    # Left out with a resident ID number, both are filled from it.
    sex = serializers.ChoiceField(choices=Sex.choices, required=False, default="")
    date_of_birth = serializers.DateField(required=False, allow_null=True, default=None)
    phone = StrictCharField(max_length=30, required=False, allow_blank=True, default="")
    national_id = StrictCharField(max_length=30, required=False, allow_blank=True, default="")
    notes = StrictCharField(max_length=4000, required=False, allow_blank=True, default="")


PATIENT_EXAMPLE = {
    "name": "张三",
    "sex": "male",
    "date_of_birth": "1962-03-14",
    "phone": "13812348000",
    "national_id": "",
    "notes": "糖尿病 10 年",
}


class PatientListCreateApi(AuditedListMixin, generics.ListAPIView):
    """GET: search patients (masked); POST: register a patient (a new patient ID is issued)."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = {"GET": ["patients.view_patient"], "POST": ["patients.add_patient"]}
    serializer_class = PatientListOutputSerializer
    filterset_class = PatientFilter
    audit_object_type = "patients.patient"

    def get_queryset(self):
        return Patient.objects.all()

    def audit_patient_ref(self, obj: Patient) -> str:
        return obj.patient_id

    @extend_schema(
        operation_id="patients_search",
        responses={200: PatientListOutputSerializer(many=True), **error_responses(400, 401, 403)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="patients_create",
        request=PatientInputSerializer,
        responses={201: PatientDetailOutputSerializer, **error_responses(400, 401, 403)},
        examples=[OpenApiExample("New patient", value=PATIENT_EXAMPLE, request_only=True)],
    )
    def post(self, request, *args, **kwargs):
        data = PatientInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with service_errors():
            patient = patient_create(actor=request.user, **data.validated_data)
        return detail_response(request, patient, status_code=status.HTTP_201_CREATED)


class PatientUpdateSerializer(serializers.Serializer):
    """Only the fields sent are changed (PATCH)."""

    name = NameField(max_length=100, required=False)
    sex = serializers.ChoiceField(choices=Sex.choices, required=False)
    date_of_birth = serializers.DateField(required=False)
    phone = StrictCharField(max_length=30, required=False, allow_blank=True)
    national_id = StrictCharField(max_length=30, required=False, allow_blank=True)
    notes = StrictCharField(max_length=4000, required=False, allow_blank=True)


class PatientDetailApi(generics.GenericAPIView):
    """GET: one patient (audited); PATCH: correct their details."""

    permission_classes = [HasRequiredPermissions]
    required_permissions = {
        "GET": ["patients.view_patient"],
        "PATCH": ["patients.view_patient", "patients.change_patient"],
    }
    serializer_class = PatientDetailOutputSerializer
    lookup_field = "patient_id"

    def get_queryset(self):
        return Patient.objects.all()

    @extend_schema(
        operation_id="patients_read",
        parameters=[OpenApiParameter("patient_id", str, OpenApiParameter.PATH)],
        responses={200: PatientDetailOutputSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request, patient_id: str):
        patient = get_object_or_404(self.get_queryset(), patient_id=patient_id)
        patient_record_view(actor=request.user, patient=patient)
        return detail_response(request, patient)

    @extend_schema(
        operation_id="patients_update",
        parameters=[OpenApiParameter("patient_id", str, OpenApiParameter.PATH)],
        request=PatientUpdateSerializer,
        responses={200: PatientDetailOutputSerializer, **error_responses(400, 401, 403, 404)},
        examples=[OpenApiExample("New phone", value={"phone": "13912345678"}, request_only=True)],
    )
    def patch(self, request, patient_id: str):
        patient = get_object_or_404(self.get_queryset(), patient_id=patient_id)
        data = PatientUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with service_errors():
            patient = patient_update(actor=request.user, patient=patient, **data.validated_data)
        return detail_response(request, patient)
