"""What each JSON file between the stages must hold (pydantic models, as for params.yaml):
a reader checks it before use, so a damaged or hand-edited file is one line naming it and
what is wrong, never a traceback or a plausible-looking wrong report. Extra keys are allowed:
a file written by a newer stage still reads."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
StoppedBy = Literal["epochs", "max_steps", "max_seconds", "target_accuracy", "early_stopping", "diverged"]


class Record(BaseModel):
    model_config = ConfigDict(extra="allow", strict=False)


class TrainingSummary(Record):
    """data/training/<experiment>/metrics.json: the train stage's summary, in DVCLive's log."""
    epochs: Annotated[int, Field(ge=1)]
    steps: Annotated[int, Field(ge=1)]
    stopped_by: StoppedBy
    params: Annotated[int, Field(ge=1)]


class Metrics(Record):
    """reports/metrics/<experiment>.json, written by evaluate."""
    test_accuracy: Fraction
    test_loss: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    test_accuracy_low: Fraction
    test_accuracy_high: Fraction
    errors: Count
    epochs: Annotated[int, Field(ge=1)]
    steps: Annotated[int, Field(ge=1)]
    stopped_by: StoppedBy
    params: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _interval_holds_accuracy(self):
        if not self.test_accuracy_low <= self.test_accuracy <= self.test_accuracy_high:
            raise ValueError("test_accuracy lies outside its interval test_accuracy_low..test_accuracy_high")
        return self


class SeedStudy(Record):
    """reports/metrics/seeds/<experiment>.json, written by seeds."""
    runs: Annotated[int, Field(ge=1)]
    seeds: list[Count]
    test_accuracy: list[Fraction]
    stopped_by: list[StoppedBy]
    mean: Fraction
    sd: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None
    min: Fraction
    max: Fraction
    test_sd: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    test_digits: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _one_entry_per_run(self):
        if not self.runs == len(self.seeds) == len(self.test_accuracy) == len(self.stopped_by):
            raise ValueError(f"runs = {self.runs}, but seeds, test_accuracy and stopped_by have "
                             f"{len(self.seeds)}, {len(self.test_accuracy)} and {len(self.stopped_by)} entries")
        return self


class Agreement(Record):
    mean: Fraction
    low: Fraction
    high: Fraction


class AtDistance(Agreement):
    distance: Annotated[int, Field(ge=1)]
    pairs: Annotated[int, Field(ge=1)]


class Consistency(Agreement):
    pairs: Annotated[int, Field(ge=1)]
    by_distance: list[AtDistance] = Field(min_length=1)


class Invariance(Record):
    """reports/metrics/invariance/<experiment>.json, written by invariance."""
    mean: Fraction
    min: Fraction
    centre: Fraction
    worst_corner: Fraction
    centre_low: Fraction
    centre_high: Fraction
    offsets_worse: Count
    offsets_better: Count
    measured_range: Fraction
    sampling_range: Fraction
    sampling_range_95: Fraction
    test_digits: Annotated[int, Field(ge=1)]
    canvas: Annotated[int, Field(ge=28)]
    grid: list[list[Fraction]]
    p_vs_centre: list[list[Fraction]]
    consistency: Consistency

    @model_validator(mode="after")
    def _a_grid_of_every_offset(self):
        size = self.canvas - 27
        for name in ("grid", "p_vs_centre"):
            rows = getattr(self, name)
            if len(rows) != size or any(len(row) != size for row in rows):
                raise ValueError(f"{name} must be {size}x{size}, one cell per offset of a {self.canvas}-pixel canvas")
        return self


class Adjusted(Record):
    """A test of a family: its raw p-value, Holm's adjustment over the family, and the verdict on that."""
    p_value: Fraction
    p_adjusted: Fraction
    significant: bool
    family: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _adjusted_never_below_raw(self):
        if self.p_adjusted < self.p_value:
            raise ValueError("p_adjusted is below p_value")
        return self


class Pair(Adjusted):
    difference: Annotated[float, Field(ge=-1, le=1)]
    only_first: Count
    only_second: Count


class Original(Record):
    reported: Fraction | None
    as_printed: Annotated[str, Field(max_length=40)]
    p_value: Fraction | None = None
    p_adjusted: Fraction | None = None


class Versus(Adjusted):
    """An experiment against a paper's published error (stages/published.py)."""
    experiment: Annotated[str, Field(max_length=40)]
    paper: Annotated[str, Field(max_length=80)]
    model: Annotated[str, Field(max_length=60)]
    published_error: Fraction
    difference: Annotated[float, Field(ge=-1, le=1)]


class Comparisons(Record):
    """reports/comparisons.json, written by compare."""
    test_digits: Annotated[int, Field(ge=1)]
    level: Fraction
    pairs: dict[str, Pair]
    original: dict[str, Original]
    published: dict[str, Versus]


class CheckpointState(Record):
    """data/checkpoints/<run>/state.json: where an interrupted training run resumes."""
    model_config = ConfigDict(extra="forbid", strict=False)
    fingerprint: str
    epoch: Count
    steps: Count
    seconds: Seconds
    history: list[dict[str, float]]
    best_val_loss: float
    best_epoch: Annotated[int, Field(ge=1)] | None
    stopped_by: StoppedBy
    variables: Annotated[str, Field(pattern=r"^epoch-\d{4}\.npz$")]  # a file of the checkpoint folder itself

    @model_validator(mode="after")
    def _consistent(self):
        if len(self.history) != self.epoch:
            raise ValueError(f"epoch = {self.epoch} but the history has {len(self.history)} epochs")
        if self.best_epoch is not None and self.best_epoch > self.epoch:
            raise ValueError(f"best_epoch = {self.best_epoch} comes after epoch = {self.epoch}")
        return self
