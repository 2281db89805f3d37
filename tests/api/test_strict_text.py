"""Text inputs of the API are JSON strings: no serializer that reads a request coerces a
number, true/false or a list into text (DRF's CharField does: ``1e999999`` became "inf")."""

from __future__ import annotations

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from core.api import StrictCharField


def request_serializers(monkeypatch) -> dict[str, serializers.Serializer]:
    """The request body serializer of every operation, as the schema generator finds them."""
    found: dict[str, serializers.Serializer] = {}
    original = AutoSchema._get_request_for_media_type

    def record(schema: AutoSchema, serializer, *args, **kwargs):
        if isinstance(serializer, serializers.Serializer) or (
            isinstance(serializer, type) and issubclass(serializer, serializers.Serializer)
        ):
            found[f"{schema.method} {schema.path}"] = serializer
        return original(schema, serializer, *args, **kwargs)

    # Every operation's request body passes here, whether extend_schema named it or not.
    monkeypatch.setattr(AutoSchema, "_get_request_for_media_type", record)
    SchemaGenerator().get_schema(request=None, public=True)
    return {
        operation: serializer() if isinstance(serializer, type) else serializer
        for operation, serializer in found.items()
    }


def test_every_text_input_of_the_api_is_a_strict_string_field(monkeypatch):
    loose = []
    checked = 0
    for operation, serializer in request_serializers(monkeypatch).items():
        for field_name, field in serializer.fields.items():
            for candidate in (field, getattr(field, "child", None)):
                if not isinstance(candidate, serializers.CharField) or candidate.read_only:
                    continue
                if isinstance(candidate, serializers.ChoiceField):
                    continue  # only its choices' own strings match
                checked += 1
                if not isinstance(candidate, StrictCharField):
                    loose.append(f"{operation}: {field_name}")
    assert loose == []
    assert checked >= 15
