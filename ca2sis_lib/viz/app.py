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

**Exports** go into one folder, the app's ``export_dir`` (the folder of the ``export_path`` the app
was built with): the box takes a file name, not a path, and an existing file is replaced only after
a second, visible confirmation. The lecture app is served to a room (``make inspector``), so the
box must not let a visitor write anywhere else.

**Display** goes through IPython's ``display``, which both widget generations support (ipywidgets 7,
Colab's, has ``_ipython_display_``; ipywidgets 8 has ``_repr_mimebundle_``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXPORT_SUFFIXES = (".png", ".svg", ".pdf")

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
        self.export_dir = Path(export_path).parent
        self._confirming: str | None = None  # the file name whose replacement awaits a second click
        self.export_path = widgets.Text(value=Path(export_path).name, description=f"file in {self._shown_dir}/",
                                        **WIDGET_STYLE)
        self.export_path.observe(lambda _: self._reset_confirmation(), names="value")
        self.export_button = widgets.Button(description="Export", icon="download", button_style="info")
        self.export_button.on_click(lambda _: self._export_clicked())
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
    @property
    def _shown_dir(self) -> str:
        """The export folder as the page shows it: a relative path as given, an absolute one by its name only
        (the lecture app is served to a room, which need not see this machine's paths)."""
        return str(self.export_dir) if not self.export_dir.is_absolute() else self.export_dir.name
    def export_target(self, name: str) -> Path:
        """The file ``name`` in the export folder; ``ValueError`` (with the fix) for anything but a file name."""
        name = name.strip()
        if not name or Path(name).name != name or name in (".", "..") or "\\" in name:
            raise ValueError(f"{name!r} is not a file name: give a name such as view.png (no folders); "
                             f"exports are written to {self._shown_dir}/")
        if Path(name).suffix.lower() not in EXPORT_SUFFIXES:
            raise ValueError(f"{name!r}: the name must end in {', '.join(EXPORT_SUFFIXES)}")
        return self.export_dir / name

    def export(self, name: str | None = None, overwrite: bool = False) -> Path:
        """Write the current view to ``name`` (default: the file box) in the export folder.

        An existing file is replaced only with ``overwrite=True`` (the Export button asks first).
        """
        target = self.export_target(self.export_path.value if name is None else name)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target.name} already exists in {self._shown_dir}/: choose another name, "
                                  "or confirm to replace it")
        self.export_dir.mkdir(parents=True, exist_ok=True)
        written = self.panel.export(target)
        self._reset_confirmation()
        self.status.value = f"<small>saved {written.name} in {self._shown_dir}/</small>"
        return written

    def _export_clicked(self) -> None:
        """The Export button: refusals and the question before replacing a file go to the status line."""
        name = self.export_path.value.strip()
        try:
            self.export(name, overwrite=self._confirming == name)
        except FileExistsError as error:
            self._confirming = name
            self.export_button.description, self.export_button.button_style = "Replace", "warning"
            self.status.value = f"<small style='color:#b60'>{error}: press Replace to overwrite it</small>"
        except ValueError as error:
            self.status.value = f"<small style='color:#b00'>export refused: {error}</small>"

    def _reset_confirmation(self) -> None:
        self._confirming = None
        self.export_button.description, self.export_button.button_style = "Export", "info"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
