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


def test_an_unknown_model_kind_is_a_params_error_naming_the_known_ones():
    known = "'linear', 'mlp', 'cnn', 'cnn_gap' or 'cnn_bn'"
    with pytest.raises(params.ParamsError, match=f"model = 'resnet': must be {known}"):
        params.parse(_params_with_model("resnet"))


def _params_with_model(model: str) -> dict:
    import yaml

    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["experiments"]["mlp_translated"]["model"] = model
    return raw
