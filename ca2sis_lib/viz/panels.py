"""Pictures and the panels that show them: a grid of pictures (by columns or by rows), a map with its
colour bar, a class legend.

    fig = image_grid({"real": images, "edited": edited}, rows=4)                     # one column per entry
    fig = plot_image_rows({"mask": labels, "real": images}, "a title", palette=PALETTE)  # one row per entry
    fig = plot_image_rows({"": frames}, "interpolation", column_titles=["t = 0", "t = 0.5", "t = 1"])

A *picture* is whatever a notebook holds: a model-format image tensor (3, H, W) in [-1, 1], an
(H, W, 3) array (floats in [0, 1], or uint8 such as ``colour_labels`` returns), an (H, W) map
(drawn in grey), or, with a palette, an (H, W) label map of integer class ids, drawn in the
palette's colours exactly (``colour_labels``): a mask is never squeezed into the image range by
hand, where a wrong scale turns classes white or gives two classes one colour. :func:`as_picture`
is the one conversion; each helper draws into a ``new_figure`` (constrained layout), so a cell
stays one idea.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch
from torch import Tensor

from ..masks import colour_labels
from .figures import as_array, clean, new_figure, to_rgb

Palette = np.ndarray | Sequence[Sequence[int]]  # (K, 3) uint8 colours, class k -> palette[k]


def as_picture(picture: Any, palette: Palette | None = None) -> np.ndarray:
    """A picture (see the module's docstring) as an array ``imshow`` draws as meant; with ``palette``,
    an (H, W) picture is a label map of class ids -> (H, W, 3) uint8 in the palette's colours."""
    if isinstance(picture, Tensor) and picture.dim() == 3 and picture.shape[0] == 3:
        return to_rgb(picture)  # (3, H, W) in [-1, 1] -> (H, W, 3) in [0, 1]
    labels = picture if isinstance(picture, Tensor) else np.asarray(picture)
    if palette is not None and labels.ndim == 2:
        if labels.is_floating_point() if isinstance(labels, Tensor) else labels.dtype.kind == "f":
            raise ValueError(f"a label map holds integer class ids, got {labels.dtype}: pass labels, not a one-hot "
                             "mask or an image channel")
        return colour_labels(labels, palette)
    array = as_array(picture)
    if array.ndim == 3 and array.shape[-1] == 3 and array.dtype != np.uint8:
        return np.clip(array, 0, 1)
    return array


def image_grid(columns: Mapping[str, Sequence[Any]] | Sequence[Sequence[Any]], rows: int | None = None,
               row_labels: Sequence[str] | None = None, panel: tuple[float, float] = (1.8, 1.8)) -> Figure:
    """One column per entry of ``columns`` (a title -> pictures mapping, or a list of picture lists), one
    row per picture: the first ``rows`` of each column (default: as many as the shortest column has)."""
    titles = list(columns) if isinstance(columns, Mapping) else [None] * len(columns)
    pictures = list(columns.values()) if isinstance(columns, Mapping) else list(columns)
    rows = min(len(column) for column in pictures) if rows is None else rows
    fig, axes = new_figure(rows, len(pictures), panel=panel)
    for j, (title, column) in enumerate(zip(titles, pictures)):
        for i in range(rows):
            picture = as_picture(column[i])
            axes[i, j].imshow(picture, cmap="gray" if picture.ndim == 2 else None, interpolation="nearest")
            clean(axes[i, j], title if i == 0 else None)
    for i, label in enumerate(row_labels or []):
        axes[i, 0].set_ylabel(label, fontsize=10)
    return fig


def _row_picture(values: Tensor, palette: Palette | None) -> np.ndarray:
    """One picture of a row of :func:`plot_image_rows`: an image (3, H, W) in [-1, 1], or a label map
    (H, W) of class ids, which needs the palette (refused otherwise: a mask is never drawn in grey)."""
    if values.dim() == 2 and palette is None:
        raise ValueError("a row of label maps needs the palette to colour them: pass palette=")
    if values.dim() not in (2, 3) or (values.dim() == 3 and values.shape[0] != 3):
        raise ValueError(f"each picture must be an image (3, H, W) or a label map (H, W), got {tuple(values.shape)}")
    return as_picture(values, palette)


def plot_image_rows(rows: Mapping[str, Tensor], title: str = "", n: int | None = None, palette: Palette | None = None,
                    column_titles: Sequence[str] | None = None, panel: tuple[float, float] = (1.7, 1.7)) -> Figure:
    """One row per entry of ``rows`` (row title -> N images or label maps), ``n`` columns (default: the
    shortest row)."""
    n = n or min(len(batch) for batch in rows.values())
    fig, axes = new_figure(len(rows), n, panel=panel)
    for i, (row_title, batch) in enumerate(rows.items()):
        for j in range(n):
            axes[i, j].imshow(_row_picture(batch[j], palette))
            clean(axes[i, j], column_titles[j] if column_titles is not None and i == 0 else None)
        axes[i, 0].set_ylabel(row_title, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def draw_map(ax: Axes, values: Tensor | np.ndarray, title: str | None = None, cmap: str = "magma",
             vmin: float | None = None, vmax: float | None = None, label: str | None = None) -> AxesImage:
    """An (H, W) map with its own colour bar (a map without a scale cannot be read); returns the image."""
    mappable = ax.imshow(as_array(values), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    clean(ax, title)
    ax.figure.colorbar(mappable, ax=ax, shrink=0.75, label=label)
    return mappable


def class_legend(fig: Figure, class_names: Sequence[str], palette: Palette,
                 classes: Sequence[int], title: str = "class colours") -> None:
    """A legend below the panels naming the colour of each class in ``classes`` (uint8 palette, K × 3)."""
    colours = np.asarray(palette, dtype=float) / 255
    handles = [Patch(color=colours[c], label=class_names[c]) for c in classes]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(10, len(handles)), fontsize=8, title=title,
               title_fontsize=8)
