"""params.yaml, loaded and validated once into typed, read-only objects (pydantic models).

Every key is required and every unknown key is an error, so a typo never silently falls
back to a default; a key written twice is an error too. The file is read as DVC reads it (YAML 1.2,
ruamel.yaml), so `on`, `1e-3` or `null` mean the same to the stages as to `dvc repro`, and a key
that YAML reads as something other than text (`null`, `true`, `1e3`) is refused.
Errors are one line that names the key and what is allowed.
"""

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from stages import paths, registry
from stages.cli import StageError
from stages.kinds import KINDS

Source = Literal[registry.SOURCE_KINDS]  # type: ignore[valid-type]
Placement = Literal["fixed", "fresh", "centre"]
MODELS: tuple[str, ...] = tuple(KINDS)
Model = Literal[MODELS]  # type: ignore[valid-type]  (the kinds of stages/kinds.py)

# Experiment names become file and stage names (data/models/<name>.keras, train@<name>).
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
NAME_RULE = "1 to 40 lower-case letters, digits, '_' or '-', starting with a letter"
Name = Annotated[str, Strict(), Field(pattern=NAME_PATTERN)]


def _known_dataset(name: str) -> str:
    if name not in registry.DATASETS:
        raise ValueError(f"not a dataset of stages/registry.py; known: {', '.join(registry.DATASETS)}")
    return name


# A dataset of stages/registry.py, checked when params are read (so that a test may add one to the table).
DatasetName = Annotated[str, Strict(), AfterValidator(_known_dataset),
                        Field(json_schema_extra={"enum": list(registry.DATASETS)})]

# Strict: a quoted "40" or a `true` is not a number. Floats must be finite: `.inf` is refused.
Count = Annotated[int, Strict(), Field(ge=1)]
Seed = Annotated[int, Strict(), Field(ge=0, lt=2**32)]  # what Keras and NumPy take
Positive = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
Runs = Annotated[int, Strict(), Field(ge=1, le=50)]


class ParamsError(StageError):
    pass


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Section):
    sources: tuple[Source, ...] = Field(min_length=1)
    idx_dir: Annotated[str, Strict()] | None
    validation_size: Count  # training needs a validation set: its loss drives the schedule's checks

    @field_validator("sources")
    @classmethod
    def _no_repeats(cls, sources):
        if len(set(sources)) != len(sources):
            raise ValueError("each source at most once")
        return sources


class Placing(Section):
    """How the translate stage places each digit: on an empty canvas x canvas image at a random offset,
    then `clutter` pieces of clutter_size x clutter_size cut from other images of the same split."""
    canvas: Annotated[int, Strict(), Field(ge=28)]
    offsets: Literal["full", "notebook"]
    clutter: Annotated[int, Strict(), Field(ge=0, le=100)] = 0
    clutter_size: Annotated[int, Strict(), Field(ge=1, le=28)] = 8

    @property
    def max_offset(self) -> int:
        """Largest offset drawn; 'notebook' reproduces the original's off-by-one range."""
        return self.canvas - 28 - (self.offsets == "notebook")


class Protocol(Placing):
    clutter: Annotated[int, Strict(), Field(ge=0, le=100)]  # required here: every key of params.yaml is
    clutter_size: Annotated[int, Strict(), Field(ge=1, le=28)]


class TranslateParams(Section):
    canvas: Annotated[int, Strict(), Field(ge=28)]
    offsets: Literal["full", "notebook"]
    seed: Seed
    protocols: dict[Name, Protocol]  # more placements, each its own file: data/translated/<dataset>/<name>.npz

    @field_validator("protocols")
    @classmethod
    def _not_a_builtin_name(cls, protocols):
        for name in protocols.keys() & {"centred", "translated"}:
            raise ValueError(f"{name} = {{...}}: {name!r} is the name of one of the translate stage's own files; "
                             "choose another name")
        return protocols

    @property
    def max_offset(self) -> int:
        return self.placings["translated"].max_offset

    @property
    def placings(self) -> dict[str, Placing]:
        """Every placed data file by name: `translated` (canvas and offsets above) and each protocol."""
        return {"translated": Placing(canvas=self.canvas, offsets=self.offsets), **self.protocols}

    def side(self, data: str) -> int:
        """The image side of data file `data` (`centred`: the 28x28 images)."""
        return 28 if data == "centred" else self.placings[data].canvas


class Experiment(Section):
    name: SkipJsonSchema[str] = Field("", exclude=True)  # the key in params.yaml; set by Params
    # The descriptions are what an editor shows from params.schema.json; params.yaml's comments say the same.
    data: Name = Field(description="centred (28x28), translated (canvas) or a protocol of translate.protocols; "
                                   "validation and test use that file")
    placement: Placement = Field(description="where training digits sit: fixed (as in the data file), fresh (a new "
                                             "random offset every epoch) or centre")
    model: Model = Field(description="the architecture (stages/models.py)")
    dataset: DatasetName = Field(description="which dataset (stages/registry.py); it must be listed in `datasets`")
    optimizer: Literal["sgd", "adam"]
    learning_rate: Positive
    schedule: Literal["constant", "cosine"] = Field(description="constant, or cosine: linear warm-up over "
                                                                "warmup_epochs, then cosine decay to 0")
    warmup_epochs: Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
    batch_size: Count
    epochs: Count
    max_steps: Count | None = Field(description="stop after this many steps; null: off")
    patience: Count | None = Field(description="stop after this many epochs without a lower validation loss, "
                                               "keeping the best epoch's weights; null: off")
    target_accuracy: Annotated[float, Strict(), Field(gt=0, le=1)] | None = Field(
        description="stop once validation accuracy reaches it; null: off")
    max_seconds: Positive | None = Field(description="stop after this many seconds of training; null: off")
    seed: Seed
    precision: Literal["float32", "mixed_bfloat16", "auto"] = Field(
        description="mixed_bfloat16: weights in float32, arithmetic in bfloat16; auto: mixed_bfloat16 where the "
                    "CPU computes bfloat16 natively (AVX-512 BF16, AMX), float32 elsewhere")
    data_parallel: Annotated[bool, Strict()] = Field(description="train on every device the backend shows, each "
                                                                 "taking a share of every batch")

    @model_validator(mode="after")
    def _centred_data_stays_put(self):
        if self.data == "centred" and self.placement != "fixed":
            raise ValueError(f"placement = {self.placement!r}: centred 28x28 data allows only 'fixed'")
        return self


class InvarianceParams(Section):
    experiments: tuple[Name, ...]
    test_digits: Count
    seed: Seed


class Params(Section):
    data: DataParams
    datasets: tuple[DatasetName, ...] = Field(min_length=1)  # downloaded and translated once each (dvc.yaml)
    translate: TranslateParams
    defaults: Experiment  # what every experiment starts from, through YAML's merge key `<<: *defaults`
    experiments: dict[Name, Experiment] = Field(min_length=1)
    seeds: dict[Name, Runs]  # how many training runs of each experiment, its own included
    invariance: InvarianceParams

    @model_validator(mode="after")
    def _name_experiments_and_check_invariance(self):
        if len(set(self.datasets)) != len(self.datasets):
            raise ValueError(f"datasets = {list(self.datasets)}: each dataset at most once")
        for name, exp in self.experiments.items():
            object.__setattr__(exp, "name", name)  # frozen models; the name is the mapping's key
            if exp.dataset not in self.datasets:
                raise ValueError(f"experiments.{name}.dataset = {exp.dataset!r}: not in `datasets` "
                                 f"({', '.join(self.datasets)}); list it there so that it is downloaded")
            if exp.data != "centred" and exp.data not in self.translate.placings:
                raise ValueError(f"experiments.{name}.data = {exp.data!r}: must be centred, translated or a protocol "
                                 f"of translate.protocols ({', '.join(self.translate.protocols) or 'none'})")
        translated = [name for name, exp in self.experiments.items() if exp.data != "centred"]
        names = self.invariance.experiments
        for i, name in enumerate(names):
            if name not in translated:
                raise ValueError(f"invariance.experiments[{i}] = {name!r}: must be one of the experiments on "
                                 f"translated data (any data but centred): {', '.join(translated)}")
        if len(set(names)) != len(names):
            raise ValueError(f"invariance.experiments = {list(names)}: each experiment at most once")
        for name in self.experiments.keys() - self.seeds.keys():
            raise ValueError(f"seeds = {{...}}: no entry for the experiment {name!r}; give each experiment its "
                             "number of runs (1: only its own)")
        for name in self.seeds.keys() - self.experiments.keys():
            raise ValueError(f"seeds.{name} = {self.seeds[name]}: not an experiment of params.yaml")
        for name, runs in self.seeds.items():
            if self.experiments[name].seed + runs - 1 >= 2**32:
                raise ValueError(f"seeds.{name} = {runs}: its last run's seed, experiments.{name}.seed + {runs - 1}, "
                                 "must be below 2**32")
        return self

    def experiment(self, name: str) -> Experiment:
        if name not in self.experiments:
            raise ParamsError(f"unknown experiment '{name}'; params.yaml defines: {', '.join(self.experiments)}")
        return self.experiments[name]


def json_schema() -> str:
    """params.yaml's JSON schema (`make schema` writes it to params.schema.json), so that editors check the file
    as they type: the first line of params.yaml names it for the YAML language server."""
    return json.dumps(Params.model_json_schema(), indent=2, ensure_ascii=False) + "\n"


# --- one line per error -------------------------------------------------------------------

def one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = tuple(first["loc"])
    if loc and loc[-1] == "[key]":
        return f"{'.'.join(map(str, loc[:-2]))}: the name {loc[-2]!r} is not allowed: {NAME_RULE}"
    key = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")
    if first["type"] == "missing":
        return f"{key}: missing; required keys: {_allowed_keys(loc[:-1])}"
    if first["type"] == "extra_forbidden":
        return f"{key}: unknown key; allowed: {_allowed_keys(loc[:-1])}"
    message = first["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    if " = " in message:  # our own checks: the message names the key below `loc`
        return ".".join(filter(None, (key, message)))
    return f"{key} = {shown(first['input'])}: {message}"


def shown(value, limit: int = 60) -> str:
    """A value as the error quotes it, cut short: an error stays one readable line."""
    return cut(repr(value), limit)


def cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _allowed_keys(loc: tuple) -> str:
    section: Any = Params
    for part in loc:
        if section is Params and part == "experiments":
            section = "experiments"
        elif section == "experiments":
            section = Experiment
        elif isinstance(section, type) and issubclass(section, BaseModel):
            section = section.model_fields[part].annotation
        else:  # a mapping of names (translate.protocols): its values' model
            section = get_args(section)[-1]
    return ", ".join(name for name, field in section.model_fields.items() if not field.exclude)


def parse(raw: Any) -> Params:
    if not isinstance(raw, dict):
        raise ParamsError("params.yaml: must be a mapping of sections")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(one_line(error)) from None


# --- reading the file -----------------------------------------------------------------------

MAX_VALUES = 100_000  # far more than any params file needs; YAML aliases can expand a few lines into billions


def read(path: Path) -> Any:
    """The YAML document, read as DVC reads it: ruamel.yaml's safe loader (YAML 1.2)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as error:
        raise ParamsError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        line = Path(path).read_bytes()[:error.start].count(b"\n") + 1
        raise ParamsError(f"{path}, line {line}: not UTF-8 text (byte 0x{error.object[error.start]:02x}); save the "
                          "file as UTF-8") from None
    yaml = YAML(typ="safe")
    try:
        _keys_are_text(yaml.compose(text), path)
        raw = yaml.load(text)
    except DuplicateKeyError as error:
        key = error.problem.split('"')[1] if error.problem.count('"') >= 2 else "?"
        raise ParamsError(f"{path}, line {error.problem_mark.line + 1}: the key {key!r} appears twice in this "
                          "mapping") from None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}{where}: {cut(error.problem or error.context, 120)}") from None
    except YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML ({cut(error, 120)})") from None
    if _size(raw, {}) > MAX_VALUES:
        raise ParamsError(f"{path}: more than {MAX_VALUES:,} values once its aliases (*name) are expanded; a "
                          "params file needs a few hundred")
    return raw


READ_AS = {"null": "null (no value)", "bool": "a boolean", "int": "a number", "float": "a number",
           "timestamp": "a date"}


def _keys_are_text(node, path: Path) -> None:
    """Every mapping key must be text: YAML reads `null`, `true` or `1e3` as other things."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    stack, seen = [node], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if key.tag == "tag:yaml.org,2002:merge":
                    pass
                elif key.tag != "tag:yaml.org,2002:str":
                    kind = READ_AS.get(key.tag.rpartition(":")[2], "something other than text")
                    raise ParamsError(f"{path}, line {key.start_mark.line + 1}: the key {shown(key.value, 40)} is read "
                                      f"as {kind}, not as a name (YAML 1.2, as DVC reads it); quote it or choose a "
                                      "name that starts with a letter")
                stack.append(value)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


def _size(value, sizes: dict) -> int:
    """How many values `value` holds once every alias is expanded (shared parts counted each time)."""
    if not isinstance(value, (dict, list)):
        return 1
    if id(value) not in sizes:
        sizes[id(value)] = MAX_VALUES + 1  # a cycle (an alias inside itself) counts as too large
        children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        sizes[id(value)] = 1 + sum(_size(child, sizes) for child in children)
    return sizes[id(value)]


# --- will it fit? ----------------------------------------------------------------------------

TRAIN, VALIDATION, TEST = 55_000, 5_000, 10_000  # MNIST's digits, as split by default
RUNTIME_BYTES = 1 << 30  # Python, TensorFlow and the model code before any data


def memory_needed(p: Params) -> tuple[int, str]:
    """A rough lower bound of the largest stage's memory, in bytes, and which stage that is.

    Canvas-sized images dominate: the translate stage holds every split's canvases twice while
    placing, training holds the training canvases and their digits, float32 validation images and
    a batch of activations; the invariance stage places its test digits at a whole row of offsets.
    """
    placings = p.translate.placings.values()
    needs = {"translate": 2 * (TRAIN + VALIDATION + TEST) * sum(placing.canvas ** 2 for placing in placings)}
    for name, exp in p.experiments.items():
        pixels = p.translate.side(exp.data) ** 2
        kind = KINDS[exp.model]
        data = (2 * TRAIN + VALIDATION + TEST) * pixels + 4 * VALIDATION * pixels
        activations = 3 * 4 * exp.batch_size * pixels * kind.activations_per_pixel
        weights = 4 * 4 * (kind.weights_per_pixel * pixels + kind.fixed_weights)
        needs[f"train@{name}"] = data + activations + weights
    for name in p.invariance.experiments:
        side = p.translate.side(p.experiments[name].data)
        needs[f"invariance@{name}"] = 5 * p.invariance.test_digits * (side - 27) * side ** 2
    stage = max(needs, key=needs.get)
    return RUNTIME_BYTES + needs[stage], stage


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def readable(size: float) -> str:
    return f"{size / 2**40:,.1f} TiB" if size >= 2**40 else f"{size / 2**30:,.1f} GiB"


def check_fits(p: Params, memory: int) -> None:
    needed, stage = memory_needed(p)
    if needed > memory:
        _, _, experiment = stage.partition("@")
        data = p.experiments[experiment].data if experiment else max(p.translate.placings, key=p.translate.side)
        data = "translated" if data == "centred" else data
        key = "translate.canvas" if data == "translated" else f"translate.protocols.{data}.canvas"
        raise ParamsError(f"{key} = {p.translate.side(data)}: {stage} would need at least {readable(needed)} of "
                          f"memory and this machine has {readable(memory)}; choose a smaller canvas (or smaller "
                          "batch_size or invariance.test_digits)")


def load(path: Path = paths.PARAMS) -> Params:
    p = parse(read(path))
    check_fits(p, physical_memory())
    return p
