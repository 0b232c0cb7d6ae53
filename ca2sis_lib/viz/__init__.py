"""Seeing what CA²-SIS attends to: recording, agreement metrics, static figures, an inspector.

    rec = record_attention(model, image, labels, class_names, palette)   # one forward pass
    plot_layer_class_grid(rec)            # every layer × class, coarse to fine
    table = agreement_table(rec)          # IoU / AUROC of each layer's maps against the mask
    sa = self_attention_maps(model, rec, y=32, x=20)   # one query pixel, no forward pass
    build_inspector(model, samples, class_names, palette)   # the interactive version
    build_editor(model, samples, class_names, palette)      # style and shape editing, interactive

Modules: ``record`` (capturing maps), ``agreement`` (IoU, AUROC, AP, tables), ``figures`` (matplotlib),
``panels`` (pictures, grids of them by column or by row, a map with its colour bar, a class legend),
``training`` (a run's curves and samples), ``inspector`` and
``editor`` (ipywidgets, imported only when an app is built).
"""

from ..masks import colour_labels  # re-exported: notebooks draw masks through viz
from .agreement import agreement_summary, agreement_table, auroc, average_precision, average_ranks, iou
from .editor import EditorApp, StyleShapeEditor, build_editor
from .figures import (
    SlideFigure,
    clean,
    figure_to_png,
    layer_at_resolution,
    new_figure,
    plot_agreement,
    plot_agreement_by_resolution,
    plot_attention_vs_modulation,
    plot_heads,
    plot_layer_class_grid,
    plot_modulation,
    plot_overlay,
    plot_pixel_distribution,
    plot_self_attention,
    save_figure,
    to_rgb,
)
from .inspector import AttentionInspector, InspectorApp, InspectorState, build_inspector
from .panels import as_picture, class_legend, draw_map, image_grid, plot_image_rows
from .record import AttentionRecording, default_palette, record_attention, self_attention_maps
from .training import plot_training_log, plot_training_progress, read_training_log

__all__ = [
    "AttentionInspector",
    "AttentionRecording",
    "EditorApp",
    "InspectorApp",
    "InspectorState",
    "SlideFigure",
    "StyleShapeEditor",
    "agreement_summary",
    "agreement_table",
    "as_picture",
    "auroc",
    "average_precision",
    "average_ranks",
    "build_editor",
    "build_inspector",
    "class_legend",
    "clean",
    "colour_labels",
    "default_palette",
    "draw_map",
    "figure_to_png",
    "image_grid",
    "iou",
    "layer_at_resolution",
    "new_figure",
    "plot_agreement",
    "plot_agreement_by_resolution",
    "plot_attention_vs_modulation",
    "plot_heads",
    "plot_image_rows",
    "plot_layer_class_grid",
    "plot_modulation",
    "plot_overlay",
    "plot_pixel_distribution",
    "plot_self_attention",
    "plot_training_log",
    "plot_training_progress",
    "read_training_log",
    "record_attention",
    "save_figure",
    "self_attention_maps",
    "to_rgb",
]
