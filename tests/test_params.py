import json

import pytest
import yaml

from stages import params, paths
from tests.conftest import REPO


def test_the_committed_params_are_valid():
    p = params.load(REPO / "params.yaml")
    # the report compares these four with the numbers the 2018 notebook printed
    assert set(p.experiments) >= {"linear_mnist", "linear_translated", "mlp_translated", "cnn_translated"}
    assert all(p.experiments[name].data == "translated" for name in p.invariance.experiments)


def test_unknown_experiment_lists_the_defined_ones():
    p = params.load(REPO / "params.yaml")
    with pytest.raises(params.ParamsError, match="unknown experiment 'nope'.*linear_mnist"):
        p.experiment("nope")


def test_a_canvas_that_cannot_fit_in_memory_is_refused_with_the_figure():
    p = params.load(REPO / "params.yaml")
    needed, stage = params.memory_needed(p)
    params.check_fits(p, memory=needed)
    data = p.experiments[stage.partition("@")[2]].data if "@" in stage else "translated"
    key = "translate.canvas" if data == "translated" else f"translate.protocols.{data}.canvas"
    with pytest.raises(params.ParamsError, match=f"{key} = {p.translate.side(data)}: {stage} would need at least "
                                                 f"{params.readable(needed)} of memory and this machine has"):
        params.check_fits(p, memory=needed - 1)
    doubled = {name: protocol.model_copy(update={"canvas": 2 * protocol.canvas})
               for name, protocol in p.translate.protocols.items()}
    larger = p.model_copy(update={"translate": p.translate.model_copy(update={"canvas": 2 * p.translate.canvas,
                                                                              "protocols": doubled})})
    data = params.memory_needed(larger)[0] - params.RUNTIME_BYTES, needed - params.RUNTIME_BYTES
    assert data[0] > 3 * data[1]  # canvas-sized images dominate: twice the side, about four times the memory


def test_a_key_written_twice_is_refused_but_a_merged_default_may_be_overridden(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("defaults: &d\n  a: 1\n  b: 2\nx:\n  <<: *d\n  a: 3\n")
    assert params.read(path) == {"defaults": {"a": 1, "b": 2}, "x": {"a": 3, "b": 2}}
    path.write_text("x:\n  a: 1\n  b: 2\n  a: 3\n")
    with pytest.raises(params.ParamsError, match="params.yaml, line 4: the key 'a' appears twice in this mapping"):
        params.read(path)


def test_the_committed_file_merges_its_defaults_into_every_experiment():
    raw = params.read(REPO / "params.yaml")
    for exp in raw["experiments"].values():
        assert set(exp) == set(raw["defaults"])


def test_the_committed_schema_is_the_one_the_models_give():
    """`make schema` rewrites it; an editor checks params.yaml against it, named on the file's first line."""
    assert (REPO / paths.PARAMS_SCHEMA).read_text(encoding="utf-8") == params.json_schema(), "run `make schema`"
    assert (REPO / "params.yaml").read_text().splitlines()[0] == "# yaml-language-server: $schema=params.schema.json"


def test_the_schema_accepts_the_committed_params_and_refuses_what_the_models_refuse():
    import jsonschema

    schema = json.loads(params.json_schema())
    raw = yaml.safe_load((REPO / "params.yaml").read_text())  # merge keys resolved, as an editor's YAML server does
    jsonschema.validate(raw, schema)
    for key, value in (("learning_rate", 0), ("model", "resnet"), ("typo", 1), ("epochs", 2.5)):
        bad = raw | {"experiments": raw["experiments"] | {"cnn_translated": raw["experiments"]["cnn_translated"]
                                                           | {key: value}}}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        with pytest.raises(params.ParamsError):
            params.parse(bad)


def raw_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("change, message", [
    (lambda raw: raw["experiments"]["mlp_translated"].update(data="cluttered99"),
     "experiments.mlp_translated.data = 'cluttered99': must be centred, translated or a protocol of "
     "translate.protocols (translated60, cluttered60)"),
    (lambda raw: raw["translate"]["protocols"].update(translated={"canvas": 40, "offsets": "full", "clutter": 0,
                                                                   "clutter_size": 8}),
     "translate.protocols.translated = {...}: 'translated' is the name of one of the translate stage's own files"),
    (lambda raw: raw["translate"]["protocols"]["cluttered60"].pop("clutter_size"),
     "translate.protocols.cluttered60.clutter_size: missing; required keys: canvas, offsets, clutter, clutter_size"),
    (lambda raw: raw["translate"]["protocols"]["cluttered60"].update(clutter_size=29),
     "translate.protocols.cluttered60.clutter_size = 29"),
    (lambda raw: raw["translate"]["protocols"]["cluttered60"].update(clutter=-1),
     "translate.protocols.cluttered60.clutter = -1"),
    (lambda raw: raw["translate"]["protocols"]["cluttered60"].update(glitter=1),
     "translate.protocols.cluttered60.glitter: unknown key; allowed: canvas, offsets, clutter, clutter_size"),
    (lambda raw: raw["translate"]["protocols"].update({"Big": raw["translate"]["protocols"]["cluttered60"]}),
     "translate.protocols: the name 'Big' is not allowed"),
])
def test_a_protocol_or_a_data_file_that_does_not_exist_is_one_line_naming_the_key(change, message):
    raw = raw_params()
    change(raw)
    with pytest.raises(params.ParamsError) as error:
        params.parse(raw)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_every_experiment_reads_the_image_side_of_its_own_data_file():
    p = params.load(REPO / "params.yaml")
    assert p.translate.side("centred") == 28 and p.translate.side("translated") == p.translate.canvas
    assert p.translate.side("cluttered60") == 60 and p.translate.placings["cluttered60"].max_offset == 32
    assert set(p.translate.placings) == {"translated", *p.translate.protocols}
