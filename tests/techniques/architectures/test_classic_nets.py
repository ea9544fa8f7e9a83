"""The classic nets (D6): sizes, shapes, FLOP counts, the auxiliary classifier, edge filters."""

import keras
import numpy as np
import pytest

from suite.core import registry
from suite.techniques.architectures import architecture_probe, cost
from suite.techniques.architectures.architecture_probe import edge_correlations, edge_kernels
from suite.techniques.architectures.cost import count_flops, count_training_flops, one_by_one_saving
from suite.techniques.architectures.families import build_model

FAMILIES = ["lenet5", "alexnet_style", "vgg_style", "nin", "inception_style", "inception_naive", "inception_aux",
            "small_resnet"]


def _build(family: str, **config):
    return build_model({"family": family, "activation": "relu", **config}, (28, 28, 1), 10)


def test_lenet5_has_the_papers_parameter_count():
    assert _build("lenet5").count_params() == 61_706  # D6: "LeNet-5 (60k params)"


def test_alexnet_at_paper_size_has_its_60_million_parameters():
    model = cost.build_alexnet_paper()
    assert model.count_params() == 60_965_224
    assert count_flops(model) == pytest.approx(1.45e9, rel=0.01)  # 0.72 G multiply-adds


def test_one_by_one_convolution_saving_on_the_notes_example():
    direct, bottleneck = one_by_one_saving()
    assert direct["output"] == bottleneck["output"] == "28x28x32"
    assert direct["multiplications"] == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400  # the notes' "120M"
    assert bottleneck["multiplications"] == 28 * 28 * 16 * 192 + 28 * 28 * 32 * 5 * 5 * 16 == 12_443_648  # "12.4M"
    assert direct["parameters"] == 5 * 5 * 192 * 32 + 32
    assert bottleneck["parameters"] == 192 * 16 + 16 + 5 * 5 * 16 * 32 + 32


def test_flops_equal_a_hand_count():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, name="conv_1")(inputs)  # valid: 6x6x4
    x = keras.layers.MaxPooling2D(2)(x)  # 3x3x4, no multiplications
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(5)(x))
    assert count_flops(model) == 2 * (6 * 6 * 3 * 3 * 2 * 4 + 36 * 5)
    # a training step: forward + weight gradients of both, the input gradient of the dense layer only
    assert count_training_flops(model) == 2 * (2 * 6 * 6 * 3 * 3 * 2 * 4 + 3 * 36 * 5)


def test_padding_keeps_size_and_valid_stride_and_pooling_shrink_it():
    """D6: 'same' keeps 28x28, a valid 5x5 takes 4 off, a stride of 2 and a 2x2 pool halve."""
    lenet = _build("lenet5")
    shape = lambda model, name: tuple(model.get_layer(name).output.shape[1:])  # noqa: E731
    assert shape(lenet, "conv_1") == (28, 28, 6) and shape(lenet, "pool_1") == (14, 14, 6)
    assert shape(lenet, "conv_2") == (10, 10, 16) and shape(lenet, "pool_2") == (5, 5, 16)
    resnet = _build("small_resnet")
    assert shape(resnet, "conv_3") == (28, 28, 8) and shape(resnet, "conv_4") == (14, 14, 16)  # stride 2
    assert "conv_2 5x5 valid 10x10x16" in cost.layer_path(lenet)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_classifies_28x28_images_and_is_counted(family):
    model = _build(family)
    out = keras.ops.convert_to_numpy(model(np.zeros((2, 28, 28, 1), "float32")))
    assert out.shape == (2, 10) and np.allclose(out.sum(axis=1), 1, atol=1e-5)
    assert count_flops(model) > 0 and architecture_probe.first_conv_kernel(model) is not None


def test_one_by_one_reductions_cut_the_inception_nets_cost():
    reduced, naive = _build("inception_style"), _build("inception_naive")
    assert count_flops(reduced) < 0.5 * count_flops(naive) and reduced.count_params() < naive.count_params()


def test_auxiliary_classifier_is_used_in_training_only(synthetic_data):
    """D6 (GoogLeNet): training adds 0.3 x the side classifier's loss; inference is the main head alone."""
    keras.utils.set_random_seed(0)
    aux = _build("inception_aux")
    assert count_flops(aux) == count_flops(_build("inception_style"))  # the side head costs nothing at inference
    x, y = synthetic_data.x_train[:16], synthetic_data.y_train[:16]
    main, side = aux(x, training=True)
    assert keras.ops.convert_to_numpy(aux(x, training=False)).shape == (16, 10)
    aux.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ce = lambda p: float(np.mean(keras.ops.convert_to_numpy(keras.losses.sparse_categorical_crossentropy(y, p))))  # noqa: E731
    total = float(aux.compute_loss(x, y, (main, side), training=True))
    assert total == pytest.approx(ce(main) + 0.3 * ce(side), rel=1e-5)
    assert float(aux.compute_loss(x, y, main, training=False)) == pytest.approx(ce(main), rel=1e-5)


@pytest.mark.slow
def test_auxiliary_net_trains_through_the_suite(synthetic_data):
    from suite.core.runner import run_trial

    config = {"family": "inception_aux", "activation": "relu", "optimizer": "adam", "learning_rate": 0.003,
              "batch_size": 64, "train_examples": 256, "epochs": 2}
    outcome = run_trial(config, 0, ("architecture_stats",), synthetic_data)
    assert outcome["status"] == "ok" and outcome["final"]["flops"] == count_flops(_build("inception_aux"))
    assert outcome["history"][0]["edge_filter_gain"] == 0  # the gain is measured against initialisation


def test_edge_kernels_match_sobel_and_random_filters_rarely_do():
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
    kernel = np.stack([sobel, sobel.T, -sobel, np.ones((3, 3)) + np.eye(3)], axis=-1)[:, :, None, :]
    r = edge_correlations(kernel)
    assert np.allclose(r[:3], 1.0) and r[3] < architecture_probe.EDGE_CORRELATION
    assert edge_kernels(3).shape == (12, 3, 3) and edge_kernels(5).shape == (4, 5, 5)
    random5 = np.random.default_rng(0).normal(size=(5, 5, 1, 500))
    assert np.mean(edge_correlations(random5) >= architecture_probe.EDGE_CORRELATION) < 0.01
    assert edge_correlations(np.ones((1, 1, 3, 4))).size == 0  # a 1x1 conv has no spatial pattern


def test_families_are_registered_models():
    assert set(FAMILIES) <= set(registry.list_names("model"))


def _study_models(profile: str = "smoke") -> dict:
    """family -> the model the architecture study's arm builds (its planned config, as a trial gets it)."""
    from conftest import REPO

    from suite.core import loader
    from suite.core.plan import plan_trials

    study = loader.load_study(REPO / "studies" / "architecture.yaml")
    trials = plan_trials(study, study.profiles[profile], "fingerprint")
    return {t.config["family"]: build_model(t.config, (28, 28, 1), 10) for t in trials}


def test_the_studys_small_resnet_has_batchnorm_between_every_conv_and_its_relu():
    """D6 (He et al. 2016): conv -> BN -> [+ shortcut] -> ReLU, in the net the architecture study trains."""
    resnet = _study_models()["small_resnet"]
    norms = [layer for layer in resnet.layers if isinstance(layer, keras.layers.BatchNormalization)]
    convs = [layer for layer in resnet.layers if layer.name.startswith("conv_")]
    assert len(convs) == 7 and len(norms) == len(convs)
    for conv in convs:
        i = conv.name.split("_")[1]
        norm, act = resnet.get_layer(f"norm_{i}"), resnet.get_layer(f"act_{i}")
        assert norm.input is conv.output  # BN reads the conv ...
        feeds_act = act.input if f"add_{i}" not in [layer.name for layer in resnet.layers] else \
            resnet.get_layer(f"add_{i}").input
        assert any(t is norm.output for t in (feeds_act if isinstance(feeds_act, list) else [feeds_act]))  # ... before ReLU
        assert act.get_config()["activation"] == "relu"


def test_in_the_architecture_study_only_the_small_resnet_has_batchnorm():
    """Each classic net as its paper built it: the study leaves `norm` to the families' defaults."""
    models = _study_models()
    assert set(models) == set(FAMILIES)
    with_bn = {family for family, model in models.items()
               if any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)}
    assert with_bn == {"small_resnet"}
