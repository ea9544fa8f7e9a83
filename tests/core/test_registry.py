import pytest

from suite.core import registry


def test_register_and_lookup(scoped_registry):
    @registry.register("test_kind", "alpha")
    def alpha():
        return "a"

    assert registry.get("test_kind", "alpha")() == "a"
    assert "alpha" in registry.list_names("test_kind")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("test_kind", "alpha")(alpha)


def test_unknown_name_lists_known_ones(scoped_registry):
    registry.add("test_kind", "alpha", object())
    with pytest.raises(registry.UnknownNameError) as err:
        registry.get("test_kind", "nope")
    assert "alpha" in str(err.value) and "nope" in str(err.value)


def test_pattern_names_bind_their_parameter(scoped_registry):
    @registry.register_pattern("test_pattern", r"scale_(\d+)", "scale_<n>")
    def scale(match, factor=1):
        return int(match.group(1)) * factor

    assert registry.get("test_pattern", "scale_3")(factor=2) == 6
    assert registry.lookup("test_pattern", "scale_x") is None
    assert "scale_<n>" in registry.list_names("test_pattern")


def test_a_scope_forgets_what_was_registered_inside():
    with registry.scoped():
        registry.add("test_kind", "temporary", 1)
        registry.register_pattern("test_kind", r"temp_(\d+)", "temp_<n>")(lambda match: match)
        assert registry.lookup("test_kind", "temporary") == 1
    assert registry.lookup("test_kind", "temporary") is None and registry.lookup("test_kind", "temp_1") is None
