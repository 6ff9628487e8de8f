"""params.yaml, loaded and validated once into typed, read-only objects.

Every key is required and every unknown key is an error, so a typo never silently
falls back to a default. Errors name the key and what is allowed.
"""

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from stages import paths
from stages.cli import StageError

SOURCES = ("local", "keras", "torchvision", "pypi")
OFFSET_RANGES = ("full", "notebook")
DATASETS = ("centred", "translated")
PLACEMENTS = ("fixed", "fresh", "centre")
MODELS = ("linear", "mlp", "cnn", "cnn_gap")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")
# Experiment names become file and stage names: keep them plain.
NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
NAME_RULE = "1 to 40 lower-case letters, digits, '_' or '-', starting with a letter"


class ParamsError(StageError):
    pass


@dataclass(frozen=True)
class DataParams:
    sources: tuple[str, ...]
    idx_dir: str | None
    validation_size: int


@dataclass(frozen=True)
class TranslateParams:
    canvas: int
    offsets: str
    seed: int

    @property
    def max_offset(self) -> int:
        """Largest offset drawn; 'notebook' reproduces the original's off-by-one range."""
        return self.canvas - 28 - (self.offsets == "notebook")


@dataclass(frozen=True)
class Experiment:
    name: str
    data: str
    placement: str
    model: str
    optimizer: str
    learning_rate: float
    schedule: str
    warmup_epochs: float
    batch_size: int
    epochs: int
    max_steps: int | None
    patience: int | None
    target_accuracy: float | None
    max_seconds: float | None
    seed: int


@dataclass(frozen=True)
class InvarianceParams:
    experiments: tuple[str, ...]
    test_digits: int
    seed: int


@dataclass(frozen=True)
class Params:
    data: DataParams
    translate: TranslateParams
    experiments: dict[str, Experiment]
    invariance: InvarianceParams

    def experiment(self, name: str) -> Experiment:
        if name not in self.experiments:
            raise ParamsError(f"unknown experiment '{name}'; params.yaml defines: {', '.join(self.experiments)}")
        return self.experiments[name]


# --- value checks: each returns the value or raises with the key's full name ---

def _integer(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParamsError(f"{key} = {value!r}: must be an integer >= {minimum}")
    return value


def _number(key: str, value: Any, low: float, high: float | None = None, low_inclusive=False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value >= low if low_inclusive else value > low) and (high is None or value <= high)
    if not ok:
        bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and <= {high}" if high is not None else "")
        raise ParamsError(f"{key} = {value!r}: must be a number {bound}")
    return float(value)


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ParamsError(f"{key} = {value!r}: must be one of {', '.join(allowed)}")
    return value


def _optional(check, key: str, value: Any, *args):
    return None if value is None else check(key, value, *args)


def _section(key: str, value: Any, cls) -> dict:
    """A mapping with exactly the dataclass's field names (bar `name`)."""
    if not isinstance(value, dict):
        raise ParamsError(f"{key}: must be a mapping, got {type(value).__name__}")
    expected = [f.name for f in fields(cls) if f.name != "name"]
    unknown = [k for k in value if k not in expected]
    if unknown:
        raise ParamsError(f"{key}.{unknown[0]}: unknown key; allowed: {', '.join(expected)}")
    missing = [k for k in expected if k not in value]
    if missing:
        raise ParamsError(f"{key}.{missing[0]}: missing; required keys: {', '.join(expected)}")
    return value


def _data(raw: Any) -> DataParams:
    d = _section("data", raw, DataParams)
    sources = d["sources"]
    if not isinstance(sources, list) or not sources or len(set(map(str, sources))) != len(sources):
        raise ParamsError(f"data.sources = {sources!r}: must be a non-empty list without repeats from {', '.join(SOURCES)}")
    for i, source in enumerate(sources):
        _choice(f"data.sources[{i}]", source, SOURCES)
    if d["idx_dir"] is not None and not isinstance(d["idx_dir"], str):
        raise ParamsError(f"data.idx_dir = {d['idx_dir']!r}: must be a folder path or null")
    return DataParams(tuple(sources), d["idx_dir"], _integer("data.validation_size", d["validation_size"], 0))


def _translate(raw: Any) -> TranslateParams:
    t = _section("translate", raw, TranslateParams)
    return TranslateParams(
        canvas=_integer("translate.canvas", t["canvas"], 28),
        offsets=_choice("translate.offsets", t["offsets"], OFFSET_RANGES),
        seed=_integer("translate.seed", t["seed"], 0),
    )


def _experiment(name: Any, raw: Any) -> Experiment:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ParamsError(f"experiments: the name {name!r} is not allowed: {NAME_RULE}")
    k = f"experiments.{name}"
    e = _section(k, raw, Experiment)
    experiment = Experiment(
        name=name,
        data=_choice(f"{k}.data", e["data"], DATASETS),
        placement=_choice(f"{k}.placement", e["placement"], PLACEMENTS),
        model=_choice(f"{k}.model", e["model"], MODELS),
        optimizer=_choice(f"{k}.optimizer", e["optimizer"], OPTIMIZERS),
        learning_rate=_number(f"{k}.learning_rate", e["learning_rate"], 0),
        schedule=_choice(f"{k}.schedule", e["schedule"], SCHEDULES),
        warmup_epochs=_number(f"{k}.warmup_epochs", e["warmup_epochs"], 0, low_inclusive=True),
        batch_size=_integer(f"{k}.batch_size", e["batch_size"], 1),
        epochs=_integer(f"{k}.epochs", e["epochs"], 1),
        max_steps=_optional(_integer, f"{k}.max_steps", e["max_steps"], 1),
        patience=_optional(_integer, f"{k}.patience", e["patience"], 1),
        target_accuracy=_optional(_number, f"{k}.target_accuracy", e["target_accuracy"], 0, 1),
        max_seconds=_optional(_number, f"{k}.max_seconds", e["max_seconds"], 0),
        seed=_integer(f"{k}.seed", e["seed"], 0),
    )
    if experiment.data == "centred" and experiment.placement != "fixed":
        raise ParamsError(f"{k}.placement = {experiment.placement!r}: centred 28x28 data allows only 'fixed'")
    return experiment


def _invariance(raw: Any, experiments: dict[str, Experiment]) -> InvarianceParams:
    v = _section("invariance", raw, InvarianceParams)
    names = v["experiments"]
    if not isinstance(names, list) or len(set(map(str, names))) != len(names):
        raise ParamsError(f"invariance.experiments = {names!r}: must be a list of experiment names without repeats")
    for i, name in enumerate(names):
        if name not in experiments or experiments[name].data != "translated":
            translated = [n for n, e in experiments.items() if e.data == "translated"]
            raise ParamsError(f"invariance.experiments[{i}] = {name!r}: must be one of the experiments on translated "
                              f"data: {', '.join(translated)}")
    return InvarianceParams(
        experiments=tuple(names),
        test_digits=_integer("invariance.test_digits", v["test_digits"], 1),
        seed=_integer("invariance.seed", v["seed"], 0),
    )


def parse(raw: Any) -> Params:
    if not isinstance(raw, dict):
        raise ParamsError("params.yaml: must be a mapping of sections")
    p = _section("params", raw, Params)
    experiments = p["experiments"]
    if not isinstance(experiments, dict) or not experiments:
        raise ParamsError("experiments: must be a non-empty mapping of experiment name to settings")
    parsed = {name: _experiment(name, e) for name, e in experiments.items()}
    return Params(
        data=_data(p["data"]),
        translate=_translate(p["translate"]),
        experiments=parsed,
        invariance=_invariance(p["invariance"], parsed),
    )


def load(path: Path = paths.PARAMS) -> Params:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ParamsError(f"cannot read {path}: {error}") from None
    return parse(raw)
