"""What the inspector and the editor apps share: ipywidgets scaffolding around a widget-free panel.

A *panel* (``AttentionInspector``, ``StyleShapeEditor``) holds a ``state`` (with a ``forwards``
counter), checks and applies changes in ``set(**changes)``, keeps the current view as ``png`` bytes
(and how long drawing took, ``render_seconds``) and writes it to a file with ``export(path)``. An
app wraps a panel in controls, one widget per state field:

    control changed ──► panel.set(name=value) ──► image + status line
                    ◄── controls re-synced to the state (a refused change snaps back, the status says why)

A subclass builds its ``controls`` and the rows that lay them out, then calls :meth:`PanelApp._build`;
it may override :meth:`PanelApp._control_values` (what each control shows) and
:meth:`PanelApp._update_options` (options that depend on the state).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WIDGET_STYLE = {"style": {"description_width": "initial"}}  # keyword arguments for every labelled control


class PanelApp:
    """Base of the ipywidgets apps: controls → panel → image, an export row and a status line."""

    panel: Any
    controls: dict[str, Any]
    counter_label = "forward passes"  # what ``panel.state.forwards`` counts, for the status line

    def _build(self, rows: list[Any], export_path: str | Path, css_class: str) -> None:
        """Observe the controls; add the image, the export row and the status line below ``rows``."""
        import ipywidgets as widgets

        self._syncing = False
        self.last_error: str | None = None
        for name, control in self.controls.items():
            control.observe(lambda change, name=name: self._on_control(name, change["new"]), names="value")
        self.export_path = widgets.Text(value=str(export_path), description="file", **WIDGET_STYLE)
        self.export_button = widgets.Button(description="Export PNG", icon="download", button_style="info")
        self.export_button.on_click(lambda _: self.export())
        self.status = widgets.HTML()
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%", max_width="1000px"))
        export_row = widgets.HBox([self.export_path, self.export_button, self.status])
        self.widget = widgets.VBox([*rows, self.image, export_row])
        self.widget.add_class(css_class)

    # -- the loop: a control changes, the panel checks it, the view and the controls follow ---------
    def _on_control(self, name: str, value: Any) -> None:
        if self._syncing:
            return
        try:
            self.apply(**{name: value})
        except ValueError:  # refused: explained in the status line; the controls go back to the state
            self._sync_controls()

    def apply(self, **changes: Any) -> None:
        """Change the selection as the controls would; a refused change is explained in the status line."""
        try:
            self.panel.set(**changes)
            self.last_error = None
        except Exception as error:  # a widget callback must not fail silently: show why, then raise
            self.last_error = f"{type(error).__name__}: {error}"
            self.status.value = f"<small style='color:#b00'>{self.last_error}</small>"
            raise
        self._sync_controls()
        self._show()

    def _control_values(self) -> dict[str, Any]:
        """What each control should show for the panel's state (default: the state field of its name)."""
        return {name: getattr(self.panel.state, name) for name in self.controls}

    def _update_options(self) -> None:
        """Hook: refresh options that depend on the state (the inspector's heads per layer)."""

    def _sync_controls(self) -> None:
        """Make the controls show the state, without their observers firing back."""
        self._syncing = True
        try:
            self._update_options()
            for name, value in self._control_values().items():
                if self.controls[name].value != value:
                    self.controls[name].value = value
        finally:
            self._syncing = False

    def _show(self) -> None:
        panel = self.panel
        self.image.value = panel.png
        self.status.value = (f"<small>{self.counter_label}: {panel.state.forwards} · "
                             f"drawn in {1000 * panel.render_seconds:.0f} ms</small>")

    # -- export and display -------------------------------------------------------------------------
    def export(self, path: str | Path | None = None) -> Path:
        """Write the current view to ``path`` (default: the file box) and say so in the status line."""
        written = self.panel.export(path or self.export_path.value)
        self.status.value = f"<small>saved {written}</small>"
        return written

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)
