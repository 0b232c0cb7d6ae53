"""An interactive attention inspector: ipywidgets controls around plain, testable Python.

Two layers, so that tests need no kernel and no browser:

* ``AttentionInspector`` holds the state (sample, layer, head, class, pixel), a cache of one
  ``AttentionRecording`` per sample, and draws the current view to PNG bytes. Only a *new sample*
  runs the model (``state.forwards`` counts those passes); layer, head, class and pixel read the
  cached recording, and a pixel's self-attention row is computed from the cached layer inputs.
* ``InspectorApp`` wires ipywidgets controls to it and shows the PNG in an ``ipywidgets.Image``.
  Replacing the image's bytes is flicker-free and works with the inline backend everywhere
  (JupyterLab, Colab, VS Code): no ipympl, no Output widget re-displaying figures.

Choosing the pixel: two sliders (row y, column x, in image pixels) and a "centre of class" button
that jumps to the selected class. Clicking on the picture would need a browser-event extension
(ipyevents) that plain ipywidgets lacks, so the inspector does not depend on one.

    app = build_inspector(model, samples, class_names=TOY_CLASSES, palette=TOY_PALETTE)
    app            # in a notebook cell: shows the controls and the view
    app.inspector.set(layer="cross@32", cls=3)   # the same, from code
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..contract import check_samples
from ..masks import class_centre, colour_labels
from ..models.interface import SemanticGenerator
from .app import WIDGET_STYLE, PanelApp
from .figures import (
    ATTENTION_CMAP,
    MARKER_COLOUR,
    SELF_ATTENTION_CMAP,
    SlideFigure,
    cell_box,
    clean,
    figure_to_png,
    to_rgb,
    upsample,
)
from .record import AttentionRecording, record_attention, self_attention_maps

Sample = dict[str, Any]  # {"image": (3, H, W) in [-1, 1], "label": (H, W) long, "name": str}


@dataclass
class InspectorState:
    """What is selected, plus counters that tests (and curious students) can read."""

    sample: int = 0
    layer: str = ""
    head: int | None = None  # None = mean over heads
    cls: int = 0
    y: int = 0  # pixel row, image coordinates
    x: int = 0  # pixel column
    forwards: int = 0  # forward passes run so far: one per sample first shown, never more
    renders: int = 0


@dataclass
class InspectorView:
    """The arrays one view draws; a test compares these instead of pixels."""

    attention: np.ndarray  # (h, w) weight of class `cls` at `layer` for `head`
    distribution: dict[str, np.ndarray]  # layer -> (K,) the pixel's weights over classes
    self_attention_layer: str | None  # the layer whose self-attention is shown (None: model has none)
    self_attention: np.ndarray | None  # (h', w') the pixel's self-attention row, head-selected
    true_class: int  # the mask's class at the pixel (-1 for an ignore label)
    extras: dict[str, Any] = field(default_factory=dict)


class AttentionInspector:
    """State, cache and drawing of the inspector, without any widget.

    ``samples``: a sequence of dicts {"image", "label", "name"} (e.g. ``ToyFaces`` items).
    """

    def __init__(self, model: SemanticGenerator, samples: Sequence[Sample], class_names: Sequence[str] | None = None,
                 palette: np.ndarray | Sequence[Sequence[int]] | None = None, dpi: int = 80) -> None:
        check_samples(model, samples, 1, "the inspector")
        self.model = model
        self.samples = samples
        self.class_names = list(class_names) if class_names is not None else None
        self.palette = None if palette is None else np.asarray(palette, dtype=np.uint8)
        self.dpi = dpi
        self.cache: dict[int, AttentionRecording] = {}
        self._names: list[str] | None = None
        self._canvas: InspectorCanvas | None = None
        self.png: bytes = b""
        self.last_view: InspectorView | None = None
        self.render_seconds = 0.0
        self.state = InspectorState()
        first = self.recording_for(0)
        self.state.layer = first.layer_names[0]
        self._centre_on_sample(first)

    # -- recordings (the only place the model runs) -------------------------------------------------
    def recording_for(self, sample: int) -> AttentionRecording:
        """The cached recording of ``sample``; the first request runs one forward pass."""
        if sample not in self.cache:
            item = self.samples[sample]
            self.cache[sample] = record_attention(self.model, item["image"][None], item["label"][None],
                                                  class_names=self.class_names, palette=self.palette)
            self.state.forwards += 1
        return self.cache[sample]

    @property
    def recording(self) -> AttentionRecording:
        return self.recording_for(self.state.sample)

    def sample_names(self) -> list[str]:
        """One label per sample (its "name" field), read once."""
        if self._names is None:
            self._names = [str(self.samples[i].get("name", f"sample {i}")) for i in range(len(self.samples))]
        return self._names

    # -- changing the selection ------------------------------------------------------------------
    def set(self, **changes: Any) -> InspectorView:
        """Change any of sample, layer, head, cls, y, x; returns the new view (and redraws ``png``).

        Everything is checked before anything changes: a bad value raises ``ValueError`` and leaves
        the state as it was. A head that a newly chosen layer lacks falls back to the mean of heads.
        """
        unknown = set(changes) - {"sample", "layer", "head", "cls", "y", "x"}
        if unknown:
            raise ValueError(f"unknown inspector controls {sorted(unknown)}")
        s = self.state
        sample = int(changes.get("sample", s.sample))
        if not 0 <= sample < len(self.samples):
            raise ValueError(f"sample {sample} is outside [0, {len(self.samples)})")
        rec = self.recording_for(sample)  # runs the model only for a sample never seen before
        layer = changes.get("layer", s.layer)
        if layer not in rec.layer_names:
            raise ValueError(f"unknown layer {layer!r}; choose from {rec.layer_names}")
        head = changes.get("head", s.head)
        head = None if head is None or head == "mean" or int(head) < 0 else int(head)
        if head is not None and head >= rec.heads(layer):
            if "head" in changes:
                raise ValueError(f"layer {layer} has {rec.heads(layer)} heads; head {head} does not exist")
            head = None
        cls = int(changes.get("cls", s.cls))
        if not 0 <= cls < rec.num_classes:
            raise ValueError(f"class {cls} is outside [0, {rec.num_classes})")
        y, x = int(changes.get("y", s.y)), int(changes.get("x", s.x))
        height, width = rec.image_size
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(f"pixel ({y}, {x}) is outside the {height}×{width} image")
        s.sample, s.layer, s.head, s.cls, s.y, s.x = sample, layer, head, cls, y, x
        return self.redraw()

    def centre_of_class(self, cls: int | None = None) -> tuple[int, int]:
        """The pixel of class ``cls`` (default: the selected class) nearest to the class's centroid."""
        centre = class_centre(self.recording.labels[0], self.state.cls if cls is None else cls)
        return (self.state.y, self.state.x) if centre is None else centre

    def _centre_on_sample(self, rec: AttentionRecording) -> None:
        """Start at the image centre, with the class found there selected."""
        height, width = rec.image_size
        self.state.y, self.state.x = height // 2, width // 2
        self.state.cls = max(0, int(rec.labels[0, self.state.y, self.state.x]))

    # -- what is drawn -----------------------------------------------------------------------------
    def self_attention_layer(self) -> str | None:
        """The selected layer if it has self-attention, else the finest layer that has it."""
        inputs = self.recording.self_attention_inputs
        if self.state.layer in inputs:
            return self.state.layer
        return list(inputs)[-1] if inputs else None

    def view(self) -> InspectorView:
        """Compute the arrays of the current selection (no forward pass; no drawing)."""
        s, rec = self.state, self.recording
        attention = rec.attention_map(s.layer, s.head, "probs")[0, s.cls].numpy()
        distribution = {k: v.numpy() for k, v in rec.pixel_distribution(s.y, s.x, 0, s.head).items()}
        sa_layer, sa_map = self.self_attention_layer(), None
        if sa_layer is not None:
            maps = self_attention_maps(self.model, rec, s.y, s.x, layers=[sa_layer])[sa_layer]  # (heads, h, w)
            head = s.head if s.head is not None and s.head < maps.shape[0] else None
            sa_map = (maps.mean(dim=0) if head is None else maps[head]).numpy()
        return InspectorView(attention=attention, distribution=distribution, self_attention_layer=sa_layer,
                             self_attention=sa_map, true_class=int(rec.labels[0, s.y, s.x]))

    def figure(self, view: InspectorView | None = None) -> Figure:
        """The whole current view as one Figure: image, mask, overlay / distribution, self-attention.

        The Figure is built once and then only updated (new data, texts and colours for the same
        artists), which is what keeps a redraw cheap.
        """
        view = self.view() if view is None else view
        rec = self.recording
        if self._canvas is None or not self._canvas.fits(rec):
            self._canvas = InspectorCanvas(rec)
        return self._canvas.update(rec, self.state, view, self.sample_names()[self.state.sample])

    def redraw(self) -> InspectorView:
        """Recompute the view and its PNG (``self.png``); returns the view."""
        start = time.perf_counter()
        view = self.view()
        self.png = figure_to_png(self.figure(view), dpi=self.dpi)
        self.last_view = view
        self.state.renders += 1
        self.render_seconds = time.perf_counter() - start
        return view

    def export(self, path: str | Path, dpi: int = 150) -> Path:
        """Save the current view for a slide (.png, .svg or .pdf, by suffix)."""
        from .figures import save_figure

        return save_figure(self.figure(), path, dpi=dpi)


class InspectorCanvas:
    """The inspector's figure: built once per model, updated in place for every view.

        image + pixel   |   mask, class outlined   |   class attention over the image
        the pixel's weights over classes, per layer      |   the pixel's self-attention

    Each cached recording holds one sample, so its batch index is always 0. The layout is fixed
    (no layout engine), so every redraw costs one Agg draw and nothing else.
    """

    def __init__(self, rec: AttentionRecording) -> None:
        self.size, self.num_classes, self.layers = rec.image_size, rec.num_classes, rec.layer_names
        fig = SlideFigure(figsize=(12.0, 6.6))
        grid = fig.add_gridspec(2, 3, height_ratios=(1.0, 0.9), left=0.05, right=0.96, top=0.95, bottom=0.13,
                                wspace=0.3, hspace=0.3)
        self.ax_image, self.ax_mask, self.ax_overlay = (fig.add_subplot(grid[0, i]) for i in range(3))
        self.ax_dist, self.ax_self = fig.add_subplot(grid[1, :2]), fig.add_subplot(grid[1, 2])
        height, width = self.size
        rgb, grey = np.zeros((height, width, 3)), np.zeros((height, width))
        self.image = self.ax_image.imshow(rgb, interpolation="nearest")
        self.mask = self.ax_mask.imshow(rgb, interpolation="nearest")
        self.overlay_base = self.ax_overlay.imshow(rgb, interpolation="nearest")
        self.overlay = self.ax_overlay.imshow(grey, cmap=ATTENTION_CMAP, vmin=0, vmax=1, alpha=0.6,
                                              interpolation="nearest")
        fig.colorbar(self.overlay, ax=self.ax_overlay, shrink=0.8, label="softmax weight")
        self.self_base = self.ax_self.imshow(rgb, interpolation="nearest")
        self.self_heat = self.ax_self.imshow(grey, cmap=SELF_ATTENTION_CMAP, vmin=0, vmax=1, alpha=0.7,
                                             interpolation="nearest")
        fig.colorbar(self.self_heat, ax=self.ax_self, shrink=0.8)
        panels = (self.ax_image, self.ax_mask, self.ax_overlay, self.ax_self)
        self.markers = [ax.plot([0], [0], marker="+", color=MARKER_COLOUR, markersize=12, markeredgewidth=2)[0]
                        for ax in panels]
        self.cells = [ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, edgecolor=MARKER_COLOUR, linewidth=1.2))
                      for ax in panels]
        for ax in panels:
            clean(ax)
        self.contour = None
        k, n = self.num_classes, len(self.layers)
        width_bar = 0.8 / n
        self.bars = [self.ax_dist.bar(np.arange(k) + (i - (n - 1) / 2) * width_bar, np.zeros(k), width_bar,
                                      edgecolor="black", linewidth=0.4, label=layer)
                     for i, layer in enumerate(self.layers)]
        self.ax_dist.set_ylim(0, 1)
        self.ax_dist.set_ylabel("softmax weight")
        self.ax_dist.set_xticks(np.arange(k))
        self.ax_dist.legend(title="coarse → fine (pale → dark)", fontsize=8, title_fontsize=8, loc="upper right")
        self.palette: np.ndarray | None = None
        self.fig = fig

    def fits(self, rec: AttentionRecording) -> bool:
        return (rec.image_size, rec.num_classes, rec.layer_names) == (self.size, self.num_classes, self.layers)

    def _colour_bars(self, palette: np.ndarray) -> None:
        shades = np.linspace(0.35, 1.0, len(self.bars))
        for shade, bars in zip(shades, self.bars):
            colours = np.asarray(palette, dtype=float) / 255.0 * shade + (1 - shade)
            for bar, colour in zip(bars, colours):
                bar.set_facecolor(colour)
        legend = self.ax_dist.get_legend()
        for handle, shade in zip(legend.legend_handles, shades):
            handle.set_facecolor((1 - shade * 0.7,) * 3)
        self.palette = palette

    def update(self, rec: AttentionRecording, s: InspectorState, view: InspectorView, name: str) -> Figure:
        if self.palette is None or not np.array_equal(self.palette, rec.palette):
            self._colour_bars(rec.palette)
        image = to_rgb(rec.image[0])
        truth = rec.class_names[view.true_class] if view.true_class >= 0 else "ignored"
        heads = "mean of heads" if s.head is None else f"head {s.head}"
        self.image.set_data(image)
        self.ax_image.set_title(f"{name}: pixel ({s.y}, {s.x}) is '{truth}'", fontsize=10)
        self.mask.set_data(colour_labels(rec.labels[0], rec.palette))
        if self.contour is not None:
            self.contour.remove()
        self.contour = self.ax_mask.contour(rec.one_hot[0, s.cls].numpy(), levels=[0.5], colors="white",
                                            linewidths=1.5)
        self.ax_mask.set_title(f"mask ('{rec.class_names[s.cls]}' outlined)", fontsize=10)
        self.overlay_base.set_data(image)
        self.overlay.set_data(upsample(torch.from_numpy(view.attention), rec.image_size))
        self.ax_overlay.set_title(f"'{rec.class_names[s.cls]}' at {s.layer}, {heads}", fontsize=10)

        for bars, layer in zip(self.bars, self.layers):
            for bar, height in zip(bars, view.distribution[layer]):
                bar.set_height(float(height))
        names = [("★ " if c == view.true_class else "") + n for c, n in enumerate(rec.class_names)]
        self.ax_dist.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
        self.ax_dist.set_title(f"Pixel ({s.y}, {s.x}): attention over classes per layer ({heads})", fontsize=11)

        has_self = view.self_attention is not None
        self.self_heat.set_visible(has_self)
        self.markers[3].set_visible(has_self)
        self.cells[3].set_visible(has_self)
        if has_self:
            self.self_base.set_data(np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2) * 0.6)
            self.self_heat.set_data(upsample(torch.from_numpy(view.self_attention), rec.image_size))
            self.self_heat.set_clim(0.0, max(float(view.self_attention.max()), 1e-6))
            self.ax_self.set_title(f"self-attention at {view.self_attention_layer} ({heads})", fontsize=10)
        else:
            self.ax_self.set_title("no self-attention in this model", fontsize=10)

        boxes = [cell_box(rec, s.layer, s.y, s.x)] * 3
        boxes.append(cell_box(rec, view.self_attention_layer, s.y, s.x) if has_self else boxes[0])
        for marker, cell, (y0, x0, h, w) in zip(self.markers, self.cells, boxes):
            marker.set_data([s.x], [s.y])
            cell.set_bounds(x0 - 0.5, y0 - 0.5, w, h)
        return self.fig


class InspectorApp(PanelApp):
    """ipywidgets controls around an ``AttentionInspector``; display it by ending a cell with it."""

    def __init__(self, inspector: AttentionInspector, export_path: str | Path = "attention_inspector.png") -> None:
        import ipywidgets as widgets

        self.inspector = self.panel = inspector
        rec, s = inspector.recording, inspector.state
        height, width = rec.image_size
        self.controls: dict[str, widgets.ValueWidget] = {
            "sample": widgets.Dropdown(options=[(n, i) for i, n in enumerate(inspector.sample_names())],
                                       value=s.sample, description="sample", **WIDGET_STYLE),
            "layer": widgets.Dropdown(options=[(self._layer_label(name), name) for name in rec.layer_names],
                                      value=s.layer, description="layer", **WIDGET_STYLE),
            "head": widgets.Dropdown(options=self._head_options(rec.heads(s.layer)), value=-1,
                                     description="head", **WIDGET_STYLE),
            "cls": widgets.Dropdown(options=[(f"{c}: {n}", c) for c, n in enumerate(rec.class_names)], value=s.cls,
                                    description="class", **WIDGET_STYLE),
            "y": widgets.IntSlider(value=s.y, min=0, max=height - 1, description="pixel row y",
                                   continuous_update=False, **WIDGET_STYLE),
            "x": widgets.IntSlider(value=s.x, min=0, max=width - 1, description="pixel column x",
                                   continuous_update=False, **WIDGET_STYLE),
        }
        self.centre_button = widgets.Button(description="pixel → centre of class", icon="crosshairs",
                                            layout=widgets.Layout(width="auto"))
        self.centre_button.on_click(lambda _: self.centre_on_class())
        c = self.controls
        rows = [widgets.HBox([c["sample"], c["layer"], c["head"], c["cls"]]),
                widgets.HBox([c["y"], c["x"], self.centre_button])]
        self._build(rows, export_path, "ca2sis-inspector")
        if not inspector.png:
            inspector.redraw()
        self._show()

    def _layer_label(self, layer: str) -> str:
        rec = self.inspector.recording
        h, w = rec.layer_size(layer)
        kind = "self + cross" if rec.has_self_attention(layer) else "cross only"
        return f"{layer} ({h}×{w}, {kind})"

    @staticmethod
    def _head_options(heads: int) -> list[tuple[str, int]]:
        return [("mean of heads", -1)] + [(f"head {i}", i) for i in range(heads)]

    def _update_options(self) -> None:
        """The head choices follow the layer (a head the new layer lacks fell back to the mean)."""
        options = self._head_options(self.inspector.recording.heads(self.inspector.state.layer))
        if list(self.controls["head"].options) != options:
            self.controls["head"].options = options

    def _control_values(self) -> dict[str, Any]:
        values = super()._control_values()
        values["head"] = -1 if values["head"] is None else values["head"]  # -1 = the mean of heads
        return values

    def centre_on_class(self) -> None:
        y, x = self.inspector.centre_of_class()
        self.apply(y=y, x=x)


def build_inspector(model: SemanticGenerator, samples: Sequence[Sample], class_names: Sequence[str] | None = None,
                    palette: np.ndarray | Sequence[Sequence[int]] | None = None,
                    export_path: str | Path = "attention_inspector.png", dpi: int = 80) -> InspectorApp:
    """The inspector app for ``model`` on ``samples``; runs exactly one forward pass (sample 0)."""
    inspector = AttentionInspector(model, samples, class_names, palette, dpi=dpi)
    return InspectorApp(inspector, export_path)
