"""Rows of pictures: images and masks side by side, one row per kind (real, edited, ideal, …).

    fig = plot_image_rows({"mask": labels, "real": images, "edited": edited}, "a title", palette=PALETTE)
    fig = plot_image_rows({"": frames}, "interpolation", column_titles=["t = 0", "t = 0.5", "t = 1"])

A row is either images, (N, 3, H, W) floats in [-1, 1], or label maps, (N, H, W) integer class ids,
which are drawn in the palette's colours exactly (``colour_labels``): a mask is never squeezed into
the image range by hand, where a wrong scale turns classes white or gives two classes one colour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from ..masks import colour_labels
from .figures import clean, new_figure, to_rgb


def picture(values: Tensor, palette: np.ndarray | Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """One picture ready for ``imshow``: an image (3, H, W) in [-1, 1] -> (H, W, 3) floats in [0, 1]; a label
    map (H, W) of class ids -> (H, W, 3) uint8 in the palette's colours."""
    if values.dim() == 2:
        if values.is_floating_point():
            raise ValueError(f"a label map holds integer class ids, got {values.dtype}: pass labels, not a one-hot "
                             "mask or an image channel")
        if palette is None:
            raise ValueError("a row of label maps needs the palette to colour them: pass palette=")
        return colour_labels(values.cpu(), palette)
    if values.dim() != 3 or values.shape[0] != 3:
        raise ValueError(f"each picture must be an image (3, H, W) or a label map (H, W), got {tuple(values.shape)}")
    return to_rgb(values)


def plot_image_rows(rows: Mapping[str, Tensor], title: str = "", n: int | None = None,
                    palette: np.ndarray | Sequence[Sequence[int]] | None = None,
                    column_titles: Sequence[str] | None = None, panel: tuple[float, float] = (1.7, 1.7)) -> Figure:
    """One row per entry of ``rows`` (row title -> N pictures), ``n`` columns (default: the shortest row)."""
    n = n or min(len(batch) for batch in rows.values())
    fig, axes = new_figure(len(rows), n, panel=panel)
    for i, (row_title, batch) in enumerate(rows.items()):
        for j in range(n):
            axes[i, j].imshow(picture(batch[j], palette))
            clean(axes[i, j], column_titles[j] if column_titles is not None and i == 0 else None)
        axes[i, 0].set_ylabel(row_title, fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


__all__ = ["picture", "plot_image_rows"]
