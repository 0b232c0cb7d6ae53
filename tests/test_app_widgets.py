"""The two apps as a notebook meets them, with whichever ipywidgets is installed (8 here; the Colab
runtime emulation runs this file again with Colab's ipywidgets 7.7.1, see tests/test_colab_runtime.py):
they display as a widget view through IPython, and their export box writes file names into the
export folder only, replacing a file only after a visible confirmation."""

from __future__ import annotations

from pathlib import Path

import ipywidgets
import pytest
from conftest import perturbed_tiny_ca2sis
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from ca2sis_lib.data.toy import TOY_CLASSES, TOY_PALETTE, ToyFaces
from ca2sis_lib.viz import build_editor, build_inspector

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    model = perturbed_tiny_ca2sis()
    data = ToyFaces(num_samples=2, split="test")
    samples = [data[i] for i in range(2)]
    folder = tmp_path_factory.mktemp("exports")
    palette = {"class_names": TOY_CLASSES, "palette": TOY_PALETTE, "dpi": 30}
    return {"inspector": build_inspector(model, samples, export_path=folder / "i.png", **palette),
            "editor": build_editor(model, samples, export_path=folder / "e.png", **palette)}


@pytest.mark.parametrize("name", ["inspector", "editor"])
def test_an_app_displays_as_a_widget_view(apps, name: str):
    shell = InteractiveShell.instance()
    with capture_output() as captured:
        shell.display_formatter.format(apps[name])  # what ending a cell with the app does
    views = [o.data for o in captured.outputs if WIDGET_VIEW in o.data]
    assert views, f"ipywidgets {ipywidgets.__version__}: the {name} displayed no widget view: {captured.outputs}"
    assert views[0][WIDGET_VIEW]["model_id"] == apps[name].widget.model_id
    assert not captured.stderr, captured.stderr


@pytest.mark.parametrize("name", ["inspector", "editor"])
@pytest.mark.parametrize("typed", ["../x/evil.png", "/tmp/ca2sis-absolute.png", "outputs/lecture/../../../victim.pdf",
                                   "sub/view.png", "..", "view.txt", "view", "  ", "a\\b.png"])
def test_the_export_box_takes_a_file_name_in_the_export_folder_only(apps, name: str, typed: str, tmp_path: Path):
    app = apps[name]
    before = sorted(app.export_dir.iterdir()) if app.export_dir.exists() else []
    app.export_path.value = typed
    app.export_button.click()
    assert "export refused" in app.status.value, app.status.value
    assert (sorted(app.export_dir.iterdir()) if app.export_dir.exists() else []) == before
    assert not Path("/tmp/ca2sis-absolute.png").exists()
    with pytest.raises(ValueError, match="file name|must end in"):
        app.export(typed)


@pytest.mark.parametrize("name", ["inspector", "editor"])
def test_an_existing_file_is_replaced_only_after_confirmation(apps, name: str):
    app = apps[name]
    app.export_path.value = f"{name}-slide.png"
    target = app.export_dir / f"{name}-slide.png"
    target.write_bytes(b"the instructor's own file")
    app.export_button.click()
    assert target.read_bytes() == b"the instructor's own file", "replaced without asking"
    assert "already exists" in app.status.value and app.export_button.description == "Replace"
    app.export_path.value = f"{name}-other.png"  # another name: the question is withdrawn
    assert app.export_button.description == "Export"
    app.export_path.value = f"{name}-slide.png"
    app.export_button.click()
    assert target.read_bytes() == b"the instructor's own file"
    app.export_button.click()  # the second press on the same name confirms
    assert target.read_bytes().startswith(PNG_SIGNATURE) and "saved" in app.status.value
    with pytest.raises(FileExistsError, match="already exists"):
        app.export(f"{name}-slide.png")
    assert app.export(f"{name}-slide.svg").read_text().lstrip().startswith("<?xml")
