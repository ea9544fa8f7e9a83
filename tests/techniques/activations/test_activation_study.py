"""studies/activation.yaml: the arms the A2b and A4 claims rest on exist, and their claims judge what they say."""

import math

import pandas as pd
import pytest

from suite.core import analysis
from suite.core.loader import find_study_path, load_study
from suite.core.study import matches

STUDY = load_study(find_study_path("activation"))
CLAIMS = {claim.id: claim for claim in STUDY.claims}


@pytest.mark.parametrize("profile", sorted(STUDY.profiles))
def test_he_init_only_for_relu_and_a_centred_sigmoid_arm(profile):
    arms = STUDY.list_arms(STUDY.profiles[profile])
    he = [arm for arm in arms if arm["kernel_initializer"] == "he_normal"]
    assert he == [{"activation": "relu", "kernel_initializer": "he_normal"}]
    assert {"activation": "sigmoid_centered", "kernel_initializer": "glorot_uniform"} in arms
    assert len(arms) == len(STUDY.factors["activation"]) + 1


def test_speed_claims_compare_he_relu_with_glorot_tanh_and_sigmoid():
    arms = STUDY.list_arms(STUDY.profiles["quick"])
    for claim_id, worse in (("A4", "tanh"), ("A4b", "tanh"), ("A4c", "sigmoid")):
        claim = CLAIMS[claim_id]
        better, worse_arms = ([arm for arm in arms if matches(arm, side)] for side in (claim.better, claim.worse))
        assert better == [{"activation": "relu", "kernel_initializer": "he_normal"}]
        assert worse_arms == [{"activation": worse, "kernel_initializer": "glorot_uniform"}]
    assert CLAIMS["A4"].ratio > 1 and CLAIMS["A4"].direction == "lower"  # "n times fewer epochs"
    for claim in STUDY.claims:  # a claim on ReLU not about He init keeps the glorot_uniform arm it had
        for side in (claim.better, claim.worse):
            if side is not None and not isinstance(side, list) and side.get("activation") == "relu":
                assert side.get("kernel_initializer") in ("glorot_uniform", "he_normal")


def test_a2b_splits_centring_from_slope():
    pairs = {cid: (CLAIMS[cid].better["activation"], CLAIMS[cid].worse["activation"])
             for cid in ("A2b", "A2b-centring", "A2b-slope")}
    assert pairs == {"A2b": ("tanh", "sigmoid"), "A2b-centring": ("sigmoid_centered", "sigmoid"),
                     "A2b-slope": ("tanh", "sigmoid_centered")}


@pytest.mark.parametrize("tanh_epochs, relu_epochs, expected", [
    ([6, 7, 6], [1, 1, 1], analysis.SUPPORTED),  # 6-7x sooner on every seed: at least 4x
    ([2, 2, 3, 2, 3], [1, 1, 1, 1, 1], analysis.CONTRADICTED),  # 2-3x sooner: well short of 6x
])
def test_a4_is_judged_as_a_ratio_against_six(tanh_epochs, relu_epochs, expected):
    paired = pd.DataFrame({"better": relu_epochs, "worse": tanh_epochs}, dtype=float)
    decision = analysis.decide_claim(CLAIMS["A4"], paired, power_notes=False)
    assert decision.verdict == expected
    ratio = math.exp(decision.effect) * CLAIMS["A4"].ratio  # the effect is log(worse / better) - log(stated ratio), averaged
    assert min(t / r for t, r in zip(tanh_epochs, relu_epochs)) <= ratio <= max(t / r for t, r in zip(tanh_epochs, relu_epochs))
