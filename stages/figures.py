"""The report's figures: one pure function per figure, arrays in, a matplotlib Figure out.

No pyplot: each function builds its own Figure on an Agg canvas, so nothing global is
kept between figures and no display is needed. Sizes are chosen for a ~900 px column
at DPI, with no text smaller than 9 pt.
"""

import functools
import io
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from stages import files

DPI = 100
WIDTH = 9.0  # inches: 900 px at DPI
INK = "gray_r"  # digits as ink on paper: 0 is white, 255 black
WEIGHTS = "RdBu_r"  # diverging: red for, blue against, white zero
ACTIVATION = "viridis"  # sequential: ReLU outputs are >= 0
COUNTS = "Blues"

STYLE = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "figure.titlesize": 12,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "image.interpolation": "nearest",  # show pixels as pixels, not blurred
}


def styled(draw):
    """Text takes its size from rcParams when it is created: draw inside our style."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _blank(ax) -> None:
    """An image panel: no ticks, but a thin frame so the canvas edge stays visible."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor("0.6")
        spine.set_linewidth(0.8)


def _symmetric(values: np.ndarray) -> float:
    """Colour limit for a diverging map: zero stays in the middle, whatever the sign mix."""
    limit = float(np.max(np.abs(values))) if values.size else 0.0
    return limit if limit > 0 else 1.0


def _grid(fig: Figure, n: int, columns: int):
    rows = -(-n // columns)
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes[:n]


@styled
def examples(images: np.ndarray, labels: np.ndarray, title: str, offsets: np.ndarray | None = None,
             digit_size: int = 28, names: tuple[str, ...] | None = None) -> Figure:
    """A 3x3 grid of images with their labels (or the labels' `names`); `offsets` (row, col) outline where
    each digit sits."""
    fig = figure(5.4, 6.0)
    for i, ax in enumerate(_grid(fig, min(9, len(images)), 3)):
        ax.imshow(images[i], cmap=INK, vmin=0, vmax=255)
        _blank(ax)
        ax.set_title(names[int(labels[i])] if names else f"label {int(labels[i])}")
        if offsets is not None:
            row, col = offsets[i]
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), digit_size, digit_size, fill=False,
                                   edgecolor="tab:orange", linestyle="--", linewidth=1))
    fig.suptitle(title)
    return fig


@styled
def weight_maps(kernel: np.ndarray, image_shape: tuple[int, int], title: str) -> Figure:
    """Ten weight maps of a linear model's (pixels, 10) kernel, on one scale centred at zero."""
    h, w = image_shape
    # Flatten() is row-major over (h, w, 1), so column d reshapes back to digit d's map.
    maps = np.asarray(kernel).T.reshape(-1, h, w)
    # Pixels a digit rarely touches (the canvas border) end with a few extreme weights; scaling
    # to the 99th percentile of |w| keeps the rest readable, and the colour bar shows the clip.
    limit = _symmetric(np.percentile(np.abs(maps), 99))
    fig = figure(WIDTH, 4.4)
    axes = _grid(fig, len(maps), 5)
    for digit, (ax, weights) in enumerate(zip(axes, maps)):
        image = ax.imshow(weights, cmap=WEIGHTS, vmin=-limit, vmax=limit)
        _blank(ax)
        ax.set_title(f"digit {digit}")
    bar = fig.colorbar(image, ax=list(axes), shrink=0.85, extend="both")
    bar.set_label("weight (red: for the digit, blue: against)")
    fig.suptitle(title)
    return fig


@styled
def conv_kernels(kernel: np.ndarray, title: str) -> Figure:
    """The learned kernels of a convolution on one-channel input: kernel shape (kh, kw, 1, n)."""
    kernels = np.moveaxis(np.asarray(kernel)[:, :, 0, :], -1, 0)
    limit = _symmetric(kernels)
    fig = figure(WIDTH, 1.1 * -(-len(kernels) // 8) + 0.8)
    axes = _grid(fig, len(kernels), 8)
    for i, (ax, k) in enumerate(zip(axes, kernels)):
        image = ax.imshow(k, cmap=WEIGHTS, vmin=-limit, vmax=limit)
        _blank(ax)
        ax.set_title(f"kernel {i + 1}", fontsize=9)
    bar = fig.colorbar(image, ax=list(axes), shrink=0.85)
    bar.set_label("weight")
    fig.suptitle(title)
    return fig


@styled
def feature_maps(digit: np.ndarray, maps: np.ndarray, title: str, digit_title: str = "input") -> Figure:
    """The input digit, and next to it the layer's output for it: maps shape (h, w, n)."""
    maps = np.moveaxis(np.asarray(maps), -1, 0)
    top = float(maps.max()) if maps.size and maps.max() > 0 else 1.0
    fig = figure(WIDTH, 1.1 * -(-len(maps) // 8) + 0.8)
    left, right = fig.subfigures(1, 2, width_ratios=[1, 3.6])
    ax = left.subplots()
    ax.imshow(digit, cmap=INK, vmin=0, vmax=255)
    _blank(ax)
    ax.set_title(digit_title)
    axes = _grid(right, len(maps), 8)
    for i, (ax, m) in enumerate(zip(axes, maps)):
        image = ax.imshow(m, cmap=ACTIVATION, vmin=0, vmax=top)
        _blank(ax)
        ax.set_title(f"map {i + 1}", fontsize=9)
    bar = right.colorbar(image, ax=list(axes), shrink=0.85)
    bar.set_label("activation")
    fig.suptitle(title)
    return fig


@styled
def training_curves(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], title: str) -> Figure:
    """curves[metric][split] = (epochs, values), e.g. curves["loss"]["val"]; epochs count from 1."""
    labels = {"loss": "cross-entropy loss", "accuracy": "accuracy"}
    names = {"train": "training", "val": "validation"}
    fig = figure(WIDTH, 3.6)
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (metric, splits) in zip(axes, curves.items()):
        for split, (epochs, values) in splits.items():
            ax.plot(epochs, values, marker="o", markersize=3, linestyle="-" if split == "train" else "--",
                    label=names.get(split, split))
        ax.set_xlabel("epoch")
        ax.set_ylabel(labels.get(metric, metric))
        ax.set_title(labels.get(metric, metric).capitalize())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return fig


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """counts[true, predicted]."""
    pairs = np.asarray(actual, dtype=np.int64) * classes + np.asarray(predicted, dtype=np.int64)
    return np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)


@styled
def confusion(actual: np.ndarray, predicted: np.ndarray, title: str) -> Figure:
    """Counts of (true, predicted) digit pairs; a log colour scale so the rare mistakes show too."""
    counts = confusion_matrix(actual, predicted)
    fig = figure(6.4, 5.8)
    ax = fig.subplots()
    top = max(2, int(counts.max()))
    # vmin below 1 so a single mistake is tinted; empty cells (masked) stay white.
    cmap = matplotlib.colormaps[COUNTS].with_extremes(bad="white")
    image = ax.imshow(np.ma.masked_equal(counts, 0), cmap=cmap, norm=LogNorm(vmin=0.5, vmax=top))
    dark = 0.5 * (2 * top) ** 0.6  # 60% up the log scale: from there on the blue needs white text
    for (true, pred), n in np.ndenumerate(counts):
        if n:
            ax.text(pred, true, str(n), ha="center", va="center", fontsize=9,
                    color="white" if n > dark else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(f"{len(actual):,} test images, {int(np.sum(np.asarray(actual) != np.asarray(predicted))):,} wrong")
    bar = fig.colorbar(image, ax=ax, shrink=0.85)
    decades = [10 ** k for k in range(len(str(top)))]  # 1, 10, 100, ... up to the largest count
    bar.set_ticks(decades, labels=[f"{d:,}" for d in decades])
    bar.minorticks_off()
    bar.set_label("test images (log scale)")
    fig.suptitle(title)
    return fig


def most_confident_errors(actual: np.ndarray, predicted: np.ndarray, confidence: np.ndarray,
                          count: int) -> np.ndarray:
    """Indices of the wrong predictions, most confident first (ties keep test-set order)."""
    wrong = np.flatnonzero(np.asarray(actual) != np.asarray(predicted))
    order = np.argsort(-np.asarray(confidence)[wrong], kind="stable")
    return wrong[order][:count]


@styled
def confident_errors(images: np.ndarray, actual: np.ndarray, predicted: np.ndarray,
                     confidence: np.ndarray, title: str, count: int = 12) -> Figure:
    """The test images the model got wrong while most sure of itself, with both labels."""
    picked = most_confident_errors(actual, predicted, confidence, count)
    fig = figure(WIDTH, 4.0 if len(picked) > 6 else 2.4)
    if not len(picked):
        ax = fig.subplots()
        ax.axis("off")
        ax.set_title("no test image was misclassified")
    else:
        for ax, i in zip(_grid(fig, len(picked), 6), picked):
            ax.imshow(images[i], cmap=INK, vmin=0, vmax=255)
            _blank(ax)
            ax.set_title(f"true {int(actual[i])}, said {int(predicted[i])}\n{confidence[i]:.1%} sure", fontsize=9)
    fig.suptitle(title)
    return fig


@styled
def invariance_maps(grids: dict[str, dict[str, np.ndarray]], title: str, item: str = "digit") -> Figure:
    """grids[condition][model] = accuracy by offset: one row per training condition, one column per model.

    All maps share one 0..1 scale, so a colour means the same accuracy everywhere. Long model names wrap,
    so that six panels a row keep their titles apart.
    """
    models = list(dict.fromkeys(model for row in grids.values() for model in row))
    fig = figure(WIDTH, 0.6 + 2.6 * len(grids))
    axes = fig.subplots(len(grids), len(models), squeeze=False)
    image = None
    for r, (condition, row) in enumerate(grids.items()):
        for c, model in enumerate(models):
            ax = axes[r, c]
            if model not in row:
                ax.set_visible(False)
                continue
            grid = row[model]
            image = ax.imshow(grid, cmap=ACTIVATION, vmin=0, vmax=1)
            ax.set_title(f"{textwrap.fill(model, 16)}\nmean {grid.mean():.1%}\nmin {grid.min():.1%}", fontsize=9)
            ax.set_xticks([0, len(grid) - 1])
            ax.set_yticks([0, len(grid) - 1])
            if c == 0:
                ax.set_ylabel(f"{condition}\nrow offset")
            if r == len(grids) - 1:
                ax.set_xlabel("column offset")
    bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.85)
    bar.set_label(f"test accuracy with the {item} at that offset")
    fig.suptitle(title)
    return fig


def by_distance(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean accuracy on each square ring of offsets around the central one: ring d is d pixels out."""
    middle = (len(grid) - 1) / 2
    rows, cols = np.indices(grid.shape)
    distance = np.maximum(np.abs(rows - middle), np.abs(cols - middle))
    distances, group = np.unique(distance, return_inverse=True)
    return distances, np.bincount(group.ravel(), weights=grid.ravel()) / np.bincount(group.ravel())


@styled
def accuracy_by_distance(curves: dict[str, dict[str, np.ndarray]], title: str) -> Figure:
    """curves[condition][model] = grid; one colour per model, one line style per condition."""
    fig = figure(WIDTH, 4.6)
    ax = fig.subplots()
    models = list(dict.fromkeys(model for row in curves.values() for model in row))
    styles = ["-", "--", ":", "-."]
    for s, (condition, row) in enumerate(curves.items()):
        for model, grid in row.items():
            distances, accuracy = by_distance(grid)
            ax.plot(distances, accuracy, linestyle=styles[s % len(styles)], marker="o", markersize=3,
                    color=f"C{models.index(model)}", label=f"{model} ({condition})")
    ax.set_xlabel("shift of the digit from the centre offset (pixels, along the farther axis)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(title)
    return fig


@styled
def consistency_by_distance(curves: dict[str, dict[str, list[dict]]], title: str) -> Figure:
    """curves[condition][model] = [{distance, mean, low, high}, ...]: how often a digit keeps its predicted
    class when moved that far, with its 95% interval as a band; colours and line styles as accuracy_by_distance."""
    fig = figure(WIDTH, 4.6)
    ax = fig.subplots()
    models = list(dict.fromkeys(model for row in curves.values() for model in row))
    styles = ["-", "--", ":", "-."]
    for s, (condition, row) in enumerate(curves.items()):
        for model, points in row.items():
            distance = [p["distance"] for p in points]
            color = f"C{models.index(model)}"
            ax.fill_between(distance, [p["low"] for p in points], [p["high"] for p in points], color=color, alpha=0.15,
                            linewidth=0)
            ax.plot(distance, [p["mean"] for p in points], linestyle=styles[s % len(styles)], marker="o",
                    markersize=3, color=color, label=f"{model} ({condition})")
    ax.set_xlabel("distance between the two offsets (pixels, along the farther axis)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("same predicted class at both offsets")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(title)
    return fig


def png(fig: Figure) -> bytes:
    """The figure as a PNG, without the matplotlib version, so equal figures give equal bytes."""
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def save(fig: Figure, path: Path) -> None:
    """Write the figure's PNG atomically."""
    files.write_all({path: png(fig)})
