"""Field mappings: paths, conversions, translations, required fields."""

import pytest

from aggregator.mapping import FieldSpec, MappingProblem, RecordMapping, compile_path, lookup


def test_paths_compile_to_keys_and_indexes():
    """A dotted path with list indexes compiles to its steps."""
    assert compile_path("fields.geo[1]") == ("fields", "geo", 1)
    assert compile_path("name") == ("name",)


@pytest.mark.parametrize("bad", ["", " name", "a..b", ".a", "a[x]", "a[1", "a.[0]"])
def test_bad_paths_are_refused(bad):
    """Malformed paths raise a ValueError that shows examples."""
    with pytest.raises(ValueError, match="not a field path"):
        compile_path(bad)


def test_lookup_returns_none_for_absent_steps():
    """A missing key, a short list or a wrong container gives None, never an exception."""
    record = {"a": {"b": [10, 20]}, "s": "text"}
    assert lookup(record, ("a", "b", 1)) == 20
    assert lookup(record, ("a", "b", 5)) is None
    assert lookup(record, ("s", "x")) is None
    assert lookup(record, ("missing",)) is None


def test_types_convert_french_style_values():
    """Decimal commas, oui/non and ISO dates convert to numbers, booleans and timestamps."""
    mapping = RecordMapping(
        {
            "lat": FieldSpec(path="lat", type="float"),
            "open": FieldSpec(path="ouvert", type="bool"),
            "places": FieldSpec(path="places", type="int"),
            "updated": FieldSpec(path="maj", type="datetime"),
        }
    )
    out, problems = mapping.apply(
        {"lat": "50,6365", "ouvert": "oui", "places": "12", "maj": "2026-03-29T08:00:00+02:00"}
    )
    assert out == {
        "lat": 50.6365,
        "open": True,
        "places": 12,
        "updated": "2026-03-29T08:00:00+02:00",
    }
    assert problems == []


def test_invalid_optional_field_is_left_empty_and_reported():
    """An optional field with a bad value becomes None and the problem is reported."""
    mapping = RecordMapping({"places": FieldSpec(path="places", type="int")})
    out, problems = mapping.apply({"places": "douze"})
    assert out == {"places": None}
    assert problems == ["field 'places': 'douze' is not a valid int"]


def test_missing_required_field_rejects_the_record():
    """A required field that is absent raises MappingProblem naming the field."""
    mapping = RecordMapping({"lat": FieldSpec(path="lat", type="float", required=True)})
    with pytest.raises(MappingProblem, match="required field 'lat' is missing"):
        mapping.apply({"lon": 3.0})


def test_translations_build_a_language_map():
    """A translated field maps each language to its own path, dropping absent ones."""
    mapping = RecordMapping(
        {"title": FieldSpec(translations={"fr": "titre_fr", "en": "titre_en", "nl": "titre_nl"})}
    )
    out, _ = mapping.apply({"titre_fr": "Marché de Noël", "titre_en": "Christmas market"})
    assert out == {"title": {"fr": "Marché de Noël", "en": "Christmas market"}}


def test_spec_needs_exactly_one_source():
    """A field spec with both a path and translations (or neither) is invalid."""
    with pytest.raises(ValueError, match="exactly one"):
        FieldSpec(path="a", translations={"fr": "b"})
    with pytest.raises(ValueError, match="exactly one"):
        FieldSpec(type="int")
