"""The inspector and the editor in one app without code, for a lecture (``make inspector``).

    build_lecture_app()                                         # shipped toy CA²-SIS on toy faces
    build_lecture_app("official:/path/to/generator.pth", "data/celebamask")   # the authors' weights

``app/lecture.ipynb`` calls this and Voilà serves it as a web page with two tabs: the attention
inspector and the style-and-shape editor, built by their public constructors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..data.samples import held_out_samples

DEFAULT_MODEL = "ca2sis_tiny_toy"


def build_lecture_app(checkpoint: str = "", data: str = "toy", num_samples: int = 8, seed: int = 0,
                      export_dir: str | Path = "exports/lecture", dpi: int = 80) -> Any:
    """A ``Tab`` with the attention inspector and the style-and-shape editor on one model.

    ``checkpoint``: "" for the shipped toy model, or anything ``load_model`` accepts (a shipped name,
    a training checkpoint, ``official:<path>``).
    """
    import ipywidgets as widgets

    from ..loading import load_model
    from . import build_editor, build_inspector

    source = checkpoint or DEFAULT_MODEL
    model = load_model(source).eval()
    config = model.config
    held_out = held_out_samples(data, config.image_size, config.num_classes, num_samples, seed, at_least=2)
    samples, names, palette = held_out.items, held_out.class_names, held_out.palette
    export_dir = Path(export_dir)
    with torch.no_grad():
        inspector = build_inspector(model, samples, class_names=names, palette=palette,
                                    export_path=export_dir / "inspector_view.png", dpi=dpi)
        editor = build_editor(model, samples, class_names=names, palette=palette,
                              export_path=export_dir / "editor_view.png", dpi=dpi)
    header = widgets.HTML(f"<p><b>model:</b> {source} · {config.image_size}², K = {config.num_classes} classes · "
                          f"<b>samples:</b> {len(samples)} from {'the toy test split' if data == 'toy' else data}</p>")
    tabs = widgets.Tab(children=[inspector.widget, editor.widget])
    tabs.set_title(0, "attention inspector")
    tabs.set_title(1, "style & shape editor")
    app = widgets.VBox([header, tabs])
    app.add_class("ca2sis-lecture")
    app.inspector, app.editor = inspector, editor  # for tests and for a notebook that wants to drive them
    return app
