"""The speed page's figures, one pure function each, drawn in the report's style (stages/figures.py)."""

import numpy as np
from matplotlib.figure import Figure

from stages.figures import WIDTH, figure, styled


@styled
def time_to_accuracy(curves: dict[str, tuple[np.ndarray, np.ndarray]], target: float, title: str) -> Figure:
    """curves[run] = (training seconds, test accuracy); a dashed line marks the target."""
    fig = figure(WIDTH, 4.0)
    ax = fig.subplots()
    for name, (seconds, accuracy) in curves.items():
        ax.plot(seconds, accuracy, marker="o", markersize=3, label=name)
    ax.axhline(target, color="0.4", linestyle="--", linewidth=1, label=f"target {target:.1%}")
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (log scale; test-set scoring not counted)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(max(0.0, min(min(a) for _, a in curves.values()) - 0.02), 1.0)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right")
    fig.suptitle(title)
    return fig
