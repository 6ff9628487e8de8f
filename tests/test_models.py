from pathlib import Path

import numpy as np
import pytest

from stages import models, params
from stages.kinds import KINDS


def dense(inputs, units):
    return inputs * units + units


@pytest.mark.parametrize("side", [28, 40])
def test_architectures_keep_the_notebooks_shapes_and_sizes(side):
    pixels = side * side
    expected = {
        "linear": dense(pixels, 10),
        "mlp": dense(pixels, 500) + dense(500, 10),
        # conv 5x5x1x32 'same', pool 2x2 -> (side/2)^2 * 32 features, dense 1024, dense 10
        "cnn": (25 * 32 + 32) + dense((side // 2) ** 2 * 32, 1024) + dense(1024, 10),
    }
    for name, count in expected.items():
        model = models.build(name, (side, side, 1))
        assert model.count_params() == count, name
        assert model.output_shape == (None, 10)


def test_cnn_gap_ends_in_a_global_pool_and_fits_any_canvas():
    for side in (28, 40, 60):
        model = models.build("cnn_gap", (side, side, 1))
        assert model.output_shape == (None, 10)
    assert any("global" in layer.name for layer in model.layers)


def test_models_return_logits_for_a_batch():
    x = np.random.default_rng(0).random((3, 40, 40, 1), dtype=np.float32)
    for name in models.BUILDERS:
        out = np.asarray(models.build(name, (40, 40, 1))(x))
        assert out.shape == (3, 10) and np.isfinite(out).all()


def test_every_model_kind_has_a_builder_and_every_builder_a_kind():
    assert set(models.BUILDERS) == set(KINDS) == set(params.MODELS)


@pytest.mark.parametrize("name", list(KINDS))
def test_each_kinds_table_entry_describes_its_model(name):
    """The figures the report draws need their layer; the memory estimate's weights are the model's, within 10%."""
    kind, side = KINDS[name], 40
    model = models.build(name, (side, side, 1))
    layers = {layer.name for layer in model.layers}
    assert ("weights" in kind.figures) == ("weights" in layers) and ("conv" in kind.figures) <= ("conv" in layers)
    estimate = kind.weights_per_pixel * side * side + kind.fixed_weights
    assert abs(estimate - model.count_params()) <= 0.1 * model.count_params()


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_cnn_invariant_answers_alike_at_every_offset_and_cnn_bn_does_not(policy, tmp_path):
    """A digit at each of the 169 offsets of a 40x40 canvas: the same logits, as built and as saved and loaded
    (its layers are registered), to the last bit or two (a convolution sums in an order that can depend on
    the position: 1e-7 of their size in float32 here, none in bfloat16); cnn_bn's differ by percents."""
    import keras

    from stages import canvas, saved_models

    rng = np.random.default_rng(3)
    digit = rng.random((1, 28, 28), dtype=np.float32) * (rng.random((1, 28, 28)) < 0.3)
    offsets = np.array([(row, col) for row in range(13) for col in range(13)])
    images = canvas.place(np.repeat(digit, len(offsets), axis=0), offsets, 40)[..., None]
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(1)
        model = models.build("cnn_invariant", (40, 40, 1))
        model.save(tmp_path / "model.keras")
        loaded = saved_models.load(tmp_path / "model.keras", "cnn_invariant", (40, 40, 1))
        for logits in (model.predict(images, verbose=0), loaded.predict(images, verbose=0)):
            assert spread(logits) <= 1e-6
        assert np.array_equal(model.predict(images, verbose=0), loaded.predict(images, verbose=0))
        assert spread(models.build("cnn_bn", (40, 40, 1)).predict(images, verbose=0)) > 0.01
    finally:
        keras.mixed_precision.set_global_policy("float32")


def spread(logits: np.ndarray) -> float:
    """The largest difference between any image's logits and the first's, relative to the largest logit."""
    return float(np.abs(logits - logits[0]).max() / np.abs(logits).max())


@pytest.mark.parametrize("side", [28, 60])
def test_cnn_invariant_fits_a_canvas_whose_pooled_sides_turn_odd(side):
    """28 pools to 14, then 7 (padded to 8); 60 to 30, then 15 (padded to 16)."""
    model = models.build("cnn_invariant", (side, side, 1))
    out = np.asarray(model(np.random.default_rng(0).random((2, side, side, 1), dtype=np.float32)))
    assert out.shape == (2, 10) and np.isfinite(out).all()


@pytest.mark.parametrize("side", [6, 7])
def test_polyphase_down_keeps_each_images_grid_of_most_energy(side):
    from stages.layers import PolyphaseDown
    images = np.random.default_rng(1).random((8, side, side, 3), dtype=np.float32)
    images[:, ::2] *= np.random.default_rng(2).random((8, 1, 1, 1), dtype=np.float32)  # vary the winner
    torus = np.pad(images, ((0, 0), (0, side % 2), (0, side % 2), (0, 0)), mode="wrap")
    grids = np.stack([torus[:, row::2, col::2] for row in (0, 1) for col in (0, 1)], axis=1)
    winners = np.square(grids).sum(axis=(2, 3, 4)).argmax(axis=1)
    assert len(set(winners)) > 1
    np.testing.assert_array_equal(np.asarray(PolyphaseDown()(images)), grids[np.arange(8), winners])


def test_an_unknown_model_kind_is_a_params_error_naming_the_known_ones():
    known = "'linear', 'mlp', 'cnn', 'cnn_gap', 'cnn_bn' or 'cnn_invariant'"
    with pytest.raises(params.ParamsError, match=f"model = 'resnet': must be {known}"):
        params.parse(_params_with_model("resnet"))


def _params_with_model(model: str) -> dict:
    import yaml

    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["experiments"]["mlp_translated"]["model"] = model
    return raw
