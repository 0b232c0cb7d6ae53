"""The lecture app (`make inspector`): the inspector and the editor served by Voilà, without code cells.

The browser test starts Voilà with the command `make inspector` runs (scripts/serve_lecture.py), with a
token, opens the page in headless Chromium (Debian's, through Playwright), changes the layer, the class
and the pixel through the page's own controls, checks that the picture is redrawn each time with no
further forward pass, that no code is shown, that the export box refuses a path out of its folder,
that a page without the token is refused, that a closed page's kernel is culled, and that the console
stayed free of errors. The last screenshot is kept under ``outputs/browser/``.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from conftest import load_script, perturbed_tiny_ca2sis
from test_inspector_browser import (
    CHROMIUM_ARGS,
    Deadline,
    InspectorControls,
    browser_or_skip,
    free_port,
    spawn,
    stop_lab,
    wait_until_answering,
)

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app" / "lecture.ipynb"
serve = load_script("scripts/serve_lecture.py")
ARTEFACTS = ROOT / "outputs" / "browser"
BUDGET_S = 420


def test_the_app_notebook_reads_checkpoint_and_data_from_make():
    source = "\n".join(c.source for c in nbformat.read(APP, as_version=4).cells if c.cell_type == "code")
    assert 'os.environ.get("CA2SIS_CHECKPOINT", "")' in source and 'os.environ.get("CA2SIS_DATA", "toy")' in source
    dry = subprocess.run(["make", "-n", "inspector", "CHECKPOINT=official:/weights/g.pth", "DATA=/data/celeba"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "CA2SIS_CHECKPOINT='official:/weights/g.pth'" in dry and "CA2SIS_DATA='/data/celeba'" in dry
    assert "scripts/serve_lecture.py --host 127.0.0.1 --port 8866" in dry and "/app/jupyter'" in dry
    room = subprocess.run(["make", "-n", "inspector", "HOST=0.0.0.0", "TOKEN=s3cret"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout
    assert "--host 0.0.0.0" in room and "--token 's3cret'" in room


def test_serving_beyond_this_machine_needs_a_token():
    with pytest.raises(ValueError, match="give a token"):
        serve.voila_command("0.0.0.0", 8866, None)
    with pytest.raises(ValueError, match="give a token"):
        serve.voila_command("192.168.1.20", 8866, "")
    room = serve.voila_command("0.0.0.0", 8866, "s3cret")
    assert "--token=s3cret" in room and "--show_tracebacks=False" in room  # no file paths shown to the room
    local = serve.voila_command("127.0.0.1", 8866, None)
    assert not any(a.startswith("--token") for a in local) and "--show_tracebacks=True" in local
    assert "--MappingKernelManager.cull_idle_timeout=600" in local and "--template=ca2sis" in local
    assert serve.is_loopback("::1") and serve.is_loopback("localhost") and not serve.is_loopback("0.0.0.0")


def test_build_lecture_app_passes_the_checkpoint_to_load_model(monkeypatch, tmp_path: Path):
    import ca2sis_lib.loading as loading
    from ca2sis_lib.viz.lecture import build_lecture_app

    asked = []
    monkeypatch.setattr(loading, "load_model", lambda source: asked.append(source) or perturbed_tiny_ca2sis())
    app = build_lecture_app("official:/weights/generator.pth", num_samples=2, export_dir=tmp_path, dpi=40)
    assert asked == ["official:/weights/generator.pth"]
    assert app.inspector.inspector.state.forwards == 1 and len(app.editor.editor.samples) == 2
    assert [app.children[1].get_title(i) for i in range(2)] == ["attention inspector", "style & shape editor"]
    assert app.inspector.export().parent == tmp_path


def test_held_out_samples_refuse_a_dataset_of_other_classes(tmp_path: Path):
    from ca2sis_lib.data.samples import held_out_samples

    official_like = dict(image_size=256, num_classes=19)  # the authors' model
    with pytest.raises(ValueError, match="DATA=<folder>"):
        held_out_samples("toy", **official_like)
    with pytest.raises(FileNotFoundError, match="images/ and labels/"):
        held_out_samples(str(tmp_path / "missing"), **official_like)
    with pytest.raises(ValueError, match="2 samples are needed"):
        held_out_samples("toy", 64, 12, num_samples=1, at_least=2)  # the editor needs A and B


TOKEN = "lecture-test-token"
CULL_IDLE_S = 6


def start_voila(tmp: Path, port: int) -> tuple[subprocess.Popen, Path]:
    for sub in ("config", "runtime", "data", "ipython"):
        (tmp / sub).mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CA2SIS_")}
    env.update(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               IPYTHONDIR=str(tmp / "ipython"), CA2SIS_EXPORT_DIR=str(tmp / "exports"), OMP_NUM_THREADS="1",
               JUPYTER_PATH=str(ROOT / "app" / "jupyter"))
    log = tmp / "voila.log"
    cmd = [*serve.voila_command("127.0.0.1", port, TOKEN, cull_idle_s=CULL_IDLE_S), "--ServerApp.port_retries=0"]
    return spawn(cmd, env, tmp, log), log


def status_without_token(port: int) -> tuple[int, str]:
    """The app page's HTTP status and redirect target for a visitor without the token (redirects not followed)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        return response.status, response.getheader("Location") or ""
    finally:
        connection.close()


def kernels(server: subprocess.Popen) -> list:
    """The server's kernel processes (Voilà does not list its kernels over HTTP)."""
    import psutil

    return [p for p in psutil.Process(server.pid).children(recursive=True)
            if any("ipykernel" in part for part in p.cmdline())]


@pytest.mark.browser
@pytest.mark.timeout(BUDGET_S + 40)
def test_lecture_app_redraws_in_the_browser_without_console_errors(tmp_path: Path):
    executable, sync_playwright = browser_or_skip()

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    deadline = Deadline(BUDGET_S)
    port = free_port()
    proc, log = start_voila(tmp_path, port)
    console_errors: list[str] = []
    try:
        wait_until_answering(proc, log, f"http://127.0.0.1:{port}/api/kernelspecs", "Voilà", deadline)
        status, where = status_without_token(port)  # the page without the token: sent to log in, or refused
        assert status == 403 or (status == 302 and "/login" in where), (status, where)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
                page.on("pageerror", lambda error: console_errors.append(f"page error: {error}"))
                page.on("requestfailed", lambda request: console_errors.append(f"request failed: {request.url}"))
                try:
                    drive(page, port, deadline)
                finally:
                    page.screenshot(path=str(ARTEFACTS / "lecture_app.png"), timeout=deadline.ms(15))
                assert len(kernels(proc)) == 1
                page.close()
            finally:
                browser.close()
        while kernels(proc):  # the closed page's kernel is culled once idle
            deadline.ms(60)
            time.sleep(1)
        exports = tmp_path / "exports"
        assert not exports.exists() or list(exports.iterdir()) == [], "a refused export wrote a file"
        assert not (tmp_path / "evil.png").exists()
    finally:
        stop_lab(proc)
    assert not console_errors, "browser console errors:\n" + "\n".join(console_errors)


def drive(page, port: int, deadline: Deadline) -> None:
    page.goto(f"http://127.0.0.1:{port}/?token={TOKEN}", timeout=deadline.ms(60))
    page.wait_for_function("""() => document.querySelector('.ca2sis-inspector img.widget-image[src]')
        || /Traceback|Error/.test(document.body.innerText)""", timeout=deadline.ms(240))
    if page.locator(".ca2sis-inspector img").count() == 0:
        pytest.fail("the app failed to start:\n" + page.inner_text("body")[-3000:])
    assert "build_lecture_app" not in page.inner_text("body"), "the app shows its code"

    controls = InspectorControls(page, deadline, ".ca2sis-inspector img")
    controls.changes("layer", lambda: controls.dropdown("layer", 1), wait_s=30)
    controls.changes("class", lambda: controls.dropdown("class", 5), wait_s=30)
    controls.changes("pixel", lambda: controls.slider("pixel row y", 12), wait_s=30)
    assert "forward passes: 1" in controls.status(), "a control change ran the model"
    page.get_by_role("tab", name="style & shape editor").click(timeout=deadline.ms(10))
    editor_image = page.locator(".ca2sis-editor img.widget-image")
    editor_image.wait_for(state="visible", timeout=deadline.ms(30))
    assert editor_image.evaluate("(img) => img.complete && img.naturalWidth > 0")
    # the export box takes a file name in the export folder, nothing else
    box = page.locator(".ca2sis-editor .widget-text input[type=text]")
    box.fill("../evil.png", timeout=deadline.ms(10))
    box.press("Enter")
    page.locator(".ca2sis-editor button", has_text="Export").click(timeout=deadline.ms(10))
    refused = page.locator(".ca2sis-editor .widget-html", has_text="export refused")
    refused.wait_for(timeout=deadline.ms(30))
    assert "not a file name" in refused.inner_text()
