"""Figure building blocks the notebooks share: a grid of pictures, a map with its colour bar, a class legend.

A *picture* is whatever a notebook holds: a model-format image tensor (3, H, W) in [-1, 1], an
(H, W, 3) array (floats in [0, 1], or uint8 such as ``colour_labels`` returns), or an (H, W) map
(drawn in grey). Each helper draws into a ``new_figure`` (constrained layout), so a cell stays one idea.
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

from .figures import as_array, clean, new_figure, to_rgb


def as_picture(picture: Any) -> np.ndarray:
    """A picture (see the module's docstring) as an array ``imshow`` draws as meant."""
    if isinstance(picture, Tensor) and picture.dim() == 3 and picture.shape[0] == 3:
        return to_rgb(picture)  # (3, H, W) in [-1, 1] -> (H, W, 3) in [0, 1]
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


def draw_map(ax: Axes, values: Tensor | np.ndarray, title: str | None = None, cmap: str = "magma",
             vmin: float | None = None, vmax: float | None = None, label: str | None = None) -> AxesImage:
    """An (H, W) map with its own colour bar (a map without a scale cannot be read); returns the image."""
    mappable = ax.imshow(as_array(values), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    clean(ax, title)
    ax.figure.colorbar(mappable, ax=ax, shrink=0.75, label=label)
    return mappable


def class_legend(fig: Figure, class_names: Sequence[str], palette: np.ndarray | Sequence[Sequence[int]],
                 classes: Sequence[int], title: str = "class colours") -> None:
    """A legend below the panels naming the colour of each class in ``classes`` (uint8 palette, K × 3)."""
    colours = np.asarray(palette, dtype=float) / 255
    handles = [Patch(color=colours[c], label=class_names[c]) for c in classes]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(10, len(handles)), fontsize=8, title=title,
               title_fontsize=8)
