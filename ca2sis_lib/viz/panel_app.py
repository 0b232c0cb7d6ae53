"""What the inspector and the editor apps share: export the current view, display the widget."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class PanelApp:
    """Base of the ipywidgets apps. A subclass sets ``panel`` (the widget-free object that draws
    and exports the view), ``widget`` (the root box), ``export_path`` (a Text) and ``status`` (HTML)."""

    panel: Any
    widget: Any
    export_path: Any
    status: Any

    def export(self, path: str | Path | None = None) -> Path:
        """Write the current view to ``path`` (default: the file box) and say so in the status line."""
        written = self.panel.export(path or self.export_path.value)
        self.status.value = f"<small>saved {written}</small>"
        return written

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)
