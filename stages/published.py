"""Published test errors on canvases the translate stage can rebuild, and which experiments they stand beside.

A published number is matched to an experiment by what both were measured on (the dataset, the canvas side,
the clutter), never by the experiment's name: a protocol renamed in params.yaml keeps its neighbours, and
one whose canvas or clutter differs from a paper's has none. The compare stage tests each match; the
report's "Published benchmarks" table shows them.
"""

from dataclasses import dataclass

from stages.params import Experiment, Placing

MNIST_TEST = 10_000  # every paper below scores the 10,000 MNIST test digits, each placed once


@dataclass(frozen=True)
class Result:
    paper: str  # who, where in the paper
    model: str
    error: float  # test error, a fraction
    canvas: int
    clutter: int | None = 0  # pieces of clutter per image; None: cluttered, in the paper's own way
    clutter_size: int = 0  # their side
    dataset: str = "mnist"

    def matches(self, dataset: str, placing: Placing) -> bool:
        if dataset != self.dataset or placing.canvas != self.canvas:
            return False
        if self.clutter is None:
            return placing.clutter > 0
        return placing.clutter == self.clutter and (not self.clutter or placing.clutter_size == self.clutter_size)


RAM = "Mnih et al. 2014 (RAM)"
ST = "Jaderberg et al. 2015 (spatial transformers)"
CAPSULES = "Sabour et al. 2017 (capsules)"

RESULTS = (
    # Sabour et al. 2017, section 5.2: digits placed at random on a 40x40 black background; test accuracy.
    Result(f"{CAPSULES}, section 5.2", "CNN (baseline)", 1 - 0.9922, canvas=40),
    Result(f"{CAPSULES}, section 5.2", "CapsNet", 1 - 0.9923, canvas=40),
    # Mnih et al. 2014, Table 1 (60x60 translated MNIST).
    Result(f"{RAM}, Table 1", "fully connected, 2 layers of 256", 0.0263, canvas=60),
    Result(f"{RAM}, Table 1", "convolutional, 2 layers", 0.0162, canvas=60),
    Result(f"{RAM}, Table 1", "RAM, 8 glimpses", 0.0120, canvas=60),
    # Mnih et al. 2014, Table 2 (60x60 cluttered translated MNIST: 4 pieces of 8x8).
    Result(f"{RAM}, Table 2", "convolutional, 2 layers", 0.0809, canvas=60, clutter=4, clutter_size=8),
    Result(f"{RAM}, Table 2", "RAM, 8 glimpses", 0.0404, canvas=60, clutter=4, clutter_size=8),
    # Jaderberg et al. 2015, section 4.1 ("translated and cluttered", 60x60): their clutter pieces are their
    # own, so these stand beside any cluttered 60x60 protocol, as the nearest published neighbours.
    Result(f"{ST}, section 4.1", "CNN", 0.035, canvas=60, clutter=None),
    Result(f"{ST}, section 4.1", "ST-CNN", 0.017, canvas=60, clutter=None),
)


def neighbours(exp: Experiment, placings: dict[str, Placing]) -> tuple[Result, ...]:
    """The published results measured as `exp` is tested; none for a model trained only at the centre
    (the papers train on placed digits) or on centred images."""
    placing = placings.get(exp.data)
    if placing is None or exp.placement == "centre":
        return ()
    return tuple(result for result in RESULTS if result.matches(exp.dataset, placing))
