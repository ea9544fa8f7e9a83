"""Keys and derived seeds: canonical, stable, and distinct per purpose."""

from suite.core.keys import canonical_json, derive_seed, trial_key


def test_key_ignores_key_order_and_is_stable():
    assert trial_key({"a": 1, "b": [1, 2]}) == trial_key({"b": [1, 2], "a": 1})
    assert canonical_json({"b": 1, "a": 2}) == '{"a":2,"b":1}'
    assert trial_key({"a": 1}) == "015abd7f5cc57a2dd94b"  # a stored key never changes meaning


def test_derived_seeds_differ_by_purpose_and_seed_and_repeat():
    seeds = {derive_seed(seed, purpose) for seed in range(50) for purpose in ("outliers", "source_model", "crop")}
    assert len(seeds) == 150  # no collisions, unlike offsets such as 1000 + seed vs seed at seed 1000
    assert derive_seed(3, "outliers") == derive_seed(3, "outliers")
    assert all(0 <= seed < 2 ** 31 for seed in seeds)  # valid for numpy, Keras and TensorFlow
