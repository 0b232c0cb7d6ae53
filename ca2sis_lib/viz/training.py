"""A training run as it goes: its loss curves (``log.csv``) and its newest sample grid (``samples/``).

    log = read_training_log("runs/toy/log.csv")
    fig = plot_training_progress("runs/toy", total_steps=200)      # curves + newest samples, one figure
    fig, axes = new_figure(1, 2, panel=(5.5, 3.4)); plot_training_log(log, axes[0], title="shipped run:")
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .figures import new_figure


def read_training_log(path: str | Path) -> pd.DataFrame:
    """log.csv as a DataFrame; a step logged twice (after a crash between two checkpoints) keeps its last row."""
    return pd.read_csv(path).drop_duplicates("step", keep="last").sort_values("step")


def plot_training_log(log: pd.DataFrame, axes: tuple[Axes, Axes], title: str = "") -> None:
    """Generator terms (× λ, log scale) on the first axes, the adversarial pair on the second."""
    window = max(1, len(log) // 25)  # light smoothing for long runs
    smooth = log.rolling(window, min_periods=1).mean()
    for column in [c for c in log.columns if c.startswith("g_") and c != "g_gan"]:
        axes[0].plot(log["step"], smooth[column].clip(lower=1e-4), label=column)
    axes[0].set_yscale("log")
    axes[0].set_title(f"{title} generator terms (× λ)".strip())
    for column in ("d_hinge", "g_gan"):
        axes[1].plot(log["step"], smooth[column], label=column)
    axes[1].set_title(f"{title} adversarial terms".strip())
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend(fontsize=7)


def plot_training_progress(run_dir: str | Path, total_steps: int) -> Figure:
    """A run folder's curves so far and its newest sample grid (mask / real / generated), in one figure."""
    run_dir = Path(run_dir)
    log = read_training_log(run_dir / "log.csv")
    samples = sorted((run_dir / "samples").glob("*.png"))
    fig, axes = new_figure(1, 3, panel=(5.0, 3.6), gridspec_kw={"width_ratios": [1, 1, 1.2]})
    plot_training_log(log, axes[0, :2])
    if samples:
        axes[0, 2].imshow(matplotlib.image.imread(samples[-1]))
        axes[0, 2].set_title(f"{samples[-1].stem}: mask / real / generated")
    axes[0, 2].axis("off")
    fig.suptitle(f"{run_dir.name}: step {int(log['step'].iloc[-1])} of {total_steps}")
    return fig


__all__ = ["plot_training_log", "plot_training_progress", "read_training_log"]
