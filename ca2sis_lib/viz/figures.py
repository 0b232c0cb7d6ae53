"""Static figures of a recording: every function takes tensors, returns a matplotlib ``Figure``.

The figures are built with ``matplotlib.figure.Figure`` directly, not through ``pyplot``: nothing
is drawn twice in a notebook, nothing piles up in pyplot's figure list, and the same function
serves a notebook cell (end the cell with ``fig`` or call ``display(fig)``), a test and a slide
(``save_figure(fig, "maps.svg")``).

Colour conventions, the same in every figure so a slide deck reads consistently:
attention weights in [0, 1] use ``magma``; logits use the diverging ``RdBu_r`` centred on 0;
self-attention uses ``viridis``; SPADE's |γ|, |β| use ``cividis``; classes use the palette.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor

from ..masks import classes_present, colour_labels
from .agreement import agreement_summary
from .record import AttentionRecording

ATTENTION_CMAP = "magma"
LOGIT_CMAP = "RdBu_r"
SELF_ATTENTION_CMAP = "viridis"
MODULATION_CMAP = "cividis"
MARKER_COLOUR = "#00e5ff"


# -- small helpers -------------------------------------------------------------------------------
def to_rgb(image: Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) float in [0, 1], ready for ``imshow``."""
    return ((image.detach().float().cpu() + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy()


def as_array(values: Tensor | np.ndarray) -> np.ndarray:
    """A tensor or array as a float numpy array (matplotlib wants numpy, not tensors)."""
    if isinstance(values, Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values)


def upsample(grid: Tensor, size: tuple[int, int]) -> np.ndarray:
    """(h, w) map -> (H, W) numpy by nearest neighbour: every token stays a visible square."""
    grid = grid.detach().float().cpu()
    return F.interpolate(grid[None, None], size=size, mode="nearest")[0, 0].numpy()


class SlideFigure(Figure):
    """A ``Figure`` that displays itself in any notebook front end (IPython calls ``_repr_png_``),
    even where pyplot, and with it the inline backend, was never imported."""

    def _repr_png_(self) -> bytes:
        return figure_to_png(self, dpi=100, tight=True)


def new_figure(nrows: int, ncols: int, panel: tuple[float, float] = (2.6, 2.6), **kwargs) -> tuple[Figure, np.ndarray]:
    """A constrained-layout Figure and a 2-D array of axes, each panel about ``panel`` inches."""
    fig = SlideFigure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def clean(ax: Axes, title: str | None = None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


def mark_pixel(ax: Axes, y: int, x: int, cell: tuple[int, int, int, int] | None = None) -> None:
    """Draw a cross at pixel (y, x) and, optionally, the outline of a layer cell (y0, x0, h, w)."""
    ax.plot(x, y, marker="+", color=MARKER_COLOUR, markersize=12, markeredgewidth=2)
    if cell is not None:
        y0, x0, h, w = cell
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), w, h, fill=False, edgecolor=MARKER_COLOUR, linewidth=1.2))


def cell_box(recording: AttentionRecording, layer: str, y: int, x: int) -> tuple[int, int, int, int]:
    """The image-space box (y0, x0, height, width) of the ``layer`` cell containing pixel (y, x)."""
    (height, width), (h, w) = recording.image_size, recording.layer_size(layer)
    row, col = recording.layer_cell(layer, y, x)
    step_y, step_x = height / h, width / w
    return round(row * step_y), round(col * step_x), round(step_y), round(step_x)


def figure_to_png(fig: Figure, dpi: int = 100, tight: bool = False) -> bytes:
    """Render ``fig`` to PNG bytes (for an ``ipywidgets.Image``, a notebook or a test)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = 200) -> Path:
    """Save ``fig`` for a slide: the suffix chooses the format (.png, .svg, .pdf); folders are made."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ValueError(f"save_figure writes .png, .svg or .pdf files, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def _resolution(recording: AttentionRecording, layer: str) -> str:
    h, w = recording.layer_size(layer)
    return f"{h}²" if h == w else f"{h}×{w}"


def _present_classes(recording: AttentionRecording, sample: int) -> list[int]:
    return classes_present(recording.one_hot[sample : sample + 1])[0].nonzero().flatten().tolist()


# -- cross-attention -----------------------------------------------------------------------------
def plot_layer_class_grid(recording: AttentionRecording, sample: int = 0, classes: list[int] | None = None,
                          kind: str = "probs", head: int | None = None, show_target: bool = True) -> Figure:
    """Rows: the mask (L_att's target), then every layer from coarse to fine; columns: classes.

    The first column shows the mask and, per layer, the attention argmax in class colours: the
    segmentation the layer would draw if each pixel took only its favourite class code.
    ``classes`` defaults to the classes present in the sample.
    """
    classes = _present_classes(recording, sample) if classes is None else list(classes)
    layers = recording.layer_names
    rows = layers if not show_target else ["target", *layers]
    fig, axes = new_figure(len(rows), len(classes) + 1, panel=(1.55, 1.55))
    if kind == "logits":
        limit = max(float(recording.attention_map(la, head, "logits")[sample].abs().max()) for la in layers)
        style = dict(cmap=LOGIT_CMAP, vmin=-limit, vmax=limit)
    else:
        style = dict(cmap=ATTENTION_CMAP, vmin=0.0, vmax=1.0)
    mappable = None
    for r, row in enumerate(rows):
        if row == "target":
            axes[r, 0].imshow(colour_labels(recording.labels[sample], recording.palette), interpolation="nearest")
            clean(axes[r, 0])
            axes[r, 0].set_ylabel("mask", fontsize=10)
            for j, c in enumerate(classes):
                target = as_array(recording.one_hot[sample, c])
                mappable = axes[r, j + 1].imshow(target, interpolation="nearest", **style)
                clean(axes[r, j + 1], recording.class_names[c])
            continue
        argmax = recording.attention_argmax(row, head)[sample]
        axes[r, 0].imshow(colour_labels(argmax, recording.palette), interpolation="nearest")
        clean(axes[r, 0])
        axes[r, 0].set_ylabel(f"{row}\n({_resolution(recording, row)})", fontsize=10)
        maps = recording.attention_map(row, head, kind)[sample]  # (K, h, w)
        for j, c in enumerate(classes):
            mappable = axes[r, j + 1].imshow(as_array(maps[c]), interpolation="nearest", **style)
            clean(axes[r, j + 1], None if show_target else recording.class_names[c])
    axes[0, 0].set_title("mask / argmax", fontsize=10)
    what = "softmax weight" if kind == "probs" else "logit"
    fig.colorbar(mappable, ax=axes, shrink=0.6, label=what)
    heads = "mean over heads" if head is None else f"head {head}"
    fig.suptitle(f"Cross-attention per layer and class ({what}, {heads})", fontsize=12)
    return fig


def plot_heads(recording: AttentionRecording, layer: str, cls: int, sample: int = 0) -> Figure:
    """What each head of ``layer`` does: its map for class ``cls`` (top) and its argmax (bottom)."""
    heads = recording.heads(layer)
    fig, axes = new_figure(2, heads + 1, panel=(2.0, 2.0))
    probs = recording.probs(layer)[sample]  # (heads, K, h, w)
    for i in range(heads + 1):
        head = None if i == heads else i
        label = "mean of heads" if head is None else f"head {head}"
        weights = recording.mean_probs(layer)[sample, cls] if head is None else probs[head, cls]
        mappable = axes[0, i].imshow(as_array(weights), cmap=ATTENTION_CMAP, vmin=0, vmax=1, interpolation="nearest")
        clean(axes[0, i], label)
        argmax = recording.attention_argmax(layer, head)[sample]
        axes[1, i].imshow(colour_labels(argmax, recording.palette), interpolation="nearest")
        clean(axes[1, i])
    axes[0, 0].set_ylabel(recording.class_names[cls], fontsize=10)
    axes[1, 0].set_ylabel("argmax", fontsize=10)
    fig.colorbar(mappable, ax=axes[0, :], shrink=0.8, label="softmax weight")
    fig.suptitle(f"The {heads} heads of {layer} ({_resolution(recording, layer)})", fontsize=12)
    return fig


def draw_overlay(ax: Axes, base: np.ndarray, heat: np.ndarray, cmap: str, vmin: float | None = None,
                 vmax: float | None = None, alpha: float = 0.6):
    """Show ``base`` (H, W, 3) faded, with ``heat`` (H, W) on top; returns the heat's artist."""
    ax.imshow(base, interpolation="nearest")
    return ax.imshow(heat, cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha, interpolation="nearest")


def plot_overlay(recording: AttentionRecording, layer: str, cls: int, sample: int = 0, head: int | None = None,
                 kind: str = "probs", alpha: float = 0.6) -> Figure:
    """One class's map at one layer: alone, over the image and over the mask (class outlined)."""
    size = recording.image_size
    grid = recording.attention_map(layer, head, kind)[sample, cls]  # (h, w)
    heat = upsample(grid, size)
    if kind == "logits":
        limit = float(grid.abs().max())
        style = dict(cmap=LOGIT_CMAP, vmin=-limit, vmax=limit)
    else:
        style = dict(cmap=ATTENTION_CMAP, vmin=0.0, vmax=1.0)
    fig, axes = new_figure(1, 4, panel=(2.6, 2.7))
    axes[0, 0].imshow(to_rgb(recording.image[sample]), interpolation="nearest")
    clean(axes[0, 0], "image")
    mappable = axes[0, 1].imshow(heat, interpolation="nearest", **style)
    clean(axes[0, 1], f"{layer} ({_resolution(recording, layer)})")
    draw_overlay(axes[0, 2], to_rgb(recording.image[sample]), heat, alpha=alpha, **style)
    clean(axes[0, 2], "over the image")
    draw_overlay(axes[0, 3], colour_labels(recording.labels[sample], recording.palette), heat, alpha=alpha, **style)
    axes[0, 3].contour(recording.one_hot[sample, cls].numpy(), levels=[0.5], colors="white", linewidths=1.5)
    clean(axes[0, 3], "over the mask (class outlined)")
    fig.colorbar(mappable, ax=axes[0, -1], shrink=0.8, label="softmax weight" if kind == "probs" else "logit")
    heads = "mean over heads" if head is None else f"head {head}"
    fig.suptitle(f"Attention to '{recording.class_names[cls]}' at {layer} ({heads})", fontsize=12)
    return fig


def plot_pixel_distribution(recording: AttentionRecording, y: int, x: int, sample: int = 0,
                            head: int | None = None, ax: Axes | None = None) -> Figure:
    """How one pixel splits its attention over the K classes, one bar per layer (coarse → fine).

    The pixel's true class is starred on the axis. Pass ``ax`` to draw into an existing figure.
    """
    dist = recording.pixel_distribution(y, x, sample, head)
    truth = int(recording.labels[sample, y, x])
    if ax is None:
        fig = SlideFigure(figsize=(max(6.0, 0.55 * recording.num_classes + 2), 3.4), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    k, n = recording.num_classes, len(dist)
    width = 0.8 / n
    shades = np.linspace(0.35, 1.0, n)
    for i, (layer, weights) in enumerate(dist.items()):
        colours = np.asarray(recording.palette, dtype=float) / 255.0 * shades[i] + (1 - shades[i])
        ax.bar(np.arange(k) + (i - (n - 1) / 2) * width, weights.numpy(), width, color=colours, edgecolor="black",
               linewidth=0.4, label=f"{layer}")
    names = [("★ " if c == truth else "") + recording.class_names[c] for c in range(k)]
    ax.set_xticks(np.arange(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("softmax weight")
    ax.legend(title="coarse → fine (pale → dark)", fontsize=8, title_fontsize=8, loc="upper right")
    heads = "mean over heads" if head is None else f"head {head}"
    ax.set_title(f"Pixel ({y}, {x}): attention over classes per layer ({heads})", fontsize=11)
    return fig


def plot_self_attention(maps: dict[str, Tensor], recording: AttentionRecording, y: int, x: int, sample: int = 0,
                        head: int | None = None, alpha: float = 0.7) -> Figure:
    """Where pixel (y, x) looks in each self-attention layer: one row of softmax(QKᵀ/√d) per panel.

    ``maps`` comes from ``self_attention_maps`` (layer -> (heads, h, w)).
    """
    fig, axes = new_figure(1, len(maps) + 1, panel=(2.7, 2.8))
    image = to_rgb(recording.image[sample])
    axes[0, 0].imshow(image, interpolation="nearest")
    mark_pixel(axes[0, 0], y, x)
    clean(axes[0, 0], f"query pixel ({y}, {x})")
    grey = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2) * 0.6
    for i, (layer, weights) in enumerate(maps.items(), start=1):
        grid = weights.mean(dim=0) if head is None else weights[head]  # (h, w)
        mappable = draw_overlay(axes[0, i], grey, upsample(grid, recording.image_size), SELF_ATTENTION_CMAP,
                                vmin=0.0, alpha=alpha)
        mark_pixel(axes[0, i], y, x, cell_box(recording, layer, y, x))
        clean(axes[0, i], f"{layer} ({_resolution(recording, layer)}), max {float(grid.max()):.3f}")
        fig.colorbar(mappable, ax=axes[0, i], shrink=0.7)
    heads = "mean over heads" if head is None else f"head {head}"
    fig.suptitle(f"Self-attention of one pixel ({heads})", fontsize=12)
    return fig


# -- agreement with the mask -----------------------------------------------------------------------
AGREEMENT_TITLES = {"iou": "IoU of the attention argmax with the mask",
                    "ap": "Average precision of the logits vs the mask",
                    "auroc": "AUROC of the logits vs the mask"}


def plot_agreement(table: pd.DataFrame, metric: str = "iou") -> Figure:
    """Heat map layer × class of ``metric`` ('iou', 'ap' or 'auroc') from ``agreement_table``."""
    import seaborn as sns

    if metric not in AGREEMENT_TITLES:
        raise ValueError(f"metric must be one of {list(AGREEMENT_TITLES)}, got {metric!r}")
    present = table[table["pixels"] > 0]
    grid = present.pivot_table(index="layer", columns="class", values=metric, sort=False)
    classes = list(dict.fromkeys(present.sort_values("class_id", kind="stable")["class"]))  # in class-id order
    grid = grid.reindex(index=list(dict.fromkeys(present["layer"])), columns=classes)
    fig = SlideFigure(figsize=(1.0 + 0.75 * grid.shape[1], 1.4 + 0.55 * grid.shape[0]), layout="constrained")
    ax = fig.subplots()
    style = dict(cmap="vlag", vmin=0, vmax=1, center=0.5) if metric == "auroc" else dict(cmap="viridis", vmin=0, vmax=1)
    with warnings.catch_warnings():  # seaborn 0.13 calls a colormap method matplotlib 3.11 plans to retire
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(grid, ax=ax, annot=True, fmt=".2f", annot_kws={"fontsize": 8}, linewidths=0.5,
                    cbar_kws={"label": metric.upper()}, **style)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(axis="x", rotation=45)
    ax.tick_params(axis="y", rotation=0)
    for label in ax.get_xticklabels():
        label.set_ha("right")
    ax.set_title(AGREEMENT_TITLES[metric], fontsize=12)
    return fig


def plot_agreement_by_resolution(table: pd.DataFrame) -> Figure:
    """Mean IoU and mean average precision per layer against its resolution: does finer mean better? (Mean
    AUROC is left out: on a trained model it sits at 1.00 at every resolution and tells nothing.)"""
    summary = agreement_summary(table)
    fig = SlideFigure(figsize=(4.8, 3.4), layout="constrained")
    ax = fig.subplots()
    ax.plot(summary["resolution"], summary["mean_iou"], "o-", label="mean IoU (argmax)")
    ax.plot(summary["resolution"], summary["mean_ap"], "s-", label="mean AP (logits)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(summary["resolution"], [f"{r}²" for r in summary["resolution"]])
    ax.minorticks_off()
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("layer resolution")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Agreement with the mask, coarse → fine", fontsize=12)
    return fig


# -- SPADE's modulation, for comparison -----------------------------------------------------------
def layer_at_resolution(modulation: dict, size: int) -> str:
    """The first SPADE-family layer whose γ/β maps are ``size`` wide, to pair with ``cross@size``."""
    for name, maps in modulation.items():
        if maps.gamma.shape[-1] == size:
            return name
    sizes = sorted({int(m.gamma.shape[-1]) for m in modulation.values()})
    raise ValueError(f"no modulation layer is {size} wide; the layers have widths {sizes}")


def plot_modulation(maps: dict, layer: str, labels: Tensor | None = None, palette: np.ndarray | None = None,
                    sample: int = 0) -> Figure:
    """A SPADE-family layer's channel-mean |γ| and |β| (from ``spade.modulation_maps``), by the mask."""
    gamma, beta = maps[layer].gamma[sample], maps[layer].beta[sample]  # (h, w) each
    panels = 3 if labels is not None else 2
    fig, axes = new_figure(1, panels, panel=(2.7, 2.8))
    i = 0
    if labels is not None:
        axes[0, 0].imshow(colour_labels(labels, palette), interpolation="nearest")
        clean(axes[0, 0], "mask")
        i = 1
    for ax, values, name in ((axes[0, i], gamma, "|γ|"), (axes[0, i + 1], beta, "|β|")):
        mappable = ax.imshow(as_array(values), cmap=MODULATION_CMAP, interpolation="nearest")
        clean(ax, f"mean {name} ({values.shape[0]}²)")
        fig.colorbar(mappable, ax=ax, shrink=0.7)
    fig.suptitle(f"SPADE modulation at {layer}", fontsize=12)
    return fig


def plot_attention_vs_modulation(recording: AttentionRecording, layer: str, cls: int, modulation: dict,
                                 spade_layer: str, sample: int = 0, spade_sample: int = 0,
                                 modulation_label: str = "SPADE") -> Figure:
    """The two mechanisms side by side at comparable resolution.

    CA²-SIS: the weight each pixel gives to class ``cls``'s *style code* (a choice among K codes,
    learned). SPADE family: the per-pixel scale |γ| and shift |β| *computed from the mask* by
    convolutions (the layout is injected, not chosen). ``modulation_label`` names the model and layer
    type the γ/β maps come from in the titles (e.g. ``"SEAN"`` for a SEANNorm layer).
    """
    fig, axes = new_figure(1, 4, panel=(2.6, 2.8))
    axes[0, 0].imshow(colour_labels(recording.labels[sample], recording.palette), interpolation="nearest")
    axes[0, 0].contour(recording.one_hot[sample, cls].numpy(), levels=[0.5], colors="white", linewidths=1.5)
    clean(axes[0, 0], f"mask ('{recording.class_names[cls]}' outlined)")
    weights = recording.mean_probs(layer)[sample, cls]
    mappable = axes[0, 1].imshow(as_array(weights), cmap=ATTENTION_CMAP, vmin=0, vmax=1, interpolation="nearest")
    clean(axes[0, 1], f"CA²-SIS {layer}: attention")
    fig.colorbar(mappable, ax=axes[0, 1], shrink=0.7)
    maps = modulation[spade_layer]
    panels = ((axes[0, 2], maps.gamma[spade_sample], "|γ|"), (axes[0, 3], maps.beta[spade_sample], "|β|"))
    for ax, values, name in panels:
        mappable = ax.imshow(as_array(values), cmap=MODULATION_CMAP, interpolation="nearest")
        clean(ax, f"{modulation_label} {name} ({values.shape[0]}²)")
        fig.colorbar(mappable, ax=ax, shrink=0.7)
    fig.suptitle(f"Choosing a class code (CA²-SIS) vs modulating by the mask ({modulation_label}, {spade_layer})",
                 fontsize=12)
    return fig
