"""The inspector in a real browser: JupyterLab on 127.0.0.1, driven by headless Chromium.

A generated notebook builds the inspector on a tiny random model; the test runs all cells, changes
the layer and the class through the page's own dropdowns, and checks that the drawn PNG changes,
that no forward pass ran for it, and that the browser console stayed free of errors. The last
screenshot is kept under ``outputs/browser/`` at the repository root.

Chromium is Debian's (``apt-get install chromium``) driven by Playwright's Python package; no
Playwright browser download is ever needed. Without Chromium the test skips, unless
``CA2SIS_REQUIRE_BROWSER=1`` (as in CI), where that is a failure. Every wait is bounded.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "outputs" / "browser"
REQUIRE = os.environ.get("CA2SIS_REQUIRE_BROWSER") == "1"
BUDGET_S = 170  # the whole test, server start included
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

NOTEBOOK_SOURCE = '''
import torch

from ca2sis_lib.models import CA2SIS, CA2SISConfig
from ca2sis_lib.viz import build_inspector

torch.set_num_threads(1)
torch.manual_seed(0)
model = CA2SIS(CA2SISConfig.tiny()).eval()
with torch.no_grad():
    for p in model.parameters():
        p.add_(0.05 * torch.randn_like(p))
labels = torch.zeros(2, 64, 64, dtype=torch.long)
for c in range(1, 12):  # nested rectangles: every class present
    lo = (c * 64) // 26
    labels[:, lo : 64 - lo, lo : 64 - lo - c % 3] = c
labels[1] = labels[1].roll(5, dims=0)
image = (torch.rand(12, 3)[labels] * 2 - 1).permute(0, 3, 1, 2)
samples = [{"image": image[i], "label": labels[i], "name": f"rectangles {i}"} for i in range(2)]
app = build_inspector(model, samples, dpi=50)
app
'''

PNG_DIGEST_JS = """async (img) => {
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    let h = 0;
    for (const b of bytes) h = (h * 31 + b) >>> 0;
    return [bytes.length, h];
}"""


class InspectorControls:
    """The inspector's controls as a student uses them, in any front end that draws ipywidgets: pick a
    dropdown option, type a slider value, and check that a change redraws the picture."""

    def __init__(self, page, deadline: Deadline, image: str = ".ca2sis-inspector img.widget-image") -> None:
        self.page, self.deadline, self.selector = page, deadline, image
        self.image = page.locator(image)

    def changes(self, what: str, action: Callable[[], None], wait_s: float = 60) -> None:
        """Run ``action`` and wait until the picture is a different one."""
        before_src, before_png = self.image.get_attribute("src"), self.image.evaluate(PNG_DIGEST_JS)
        action()
        self.page.wait_for_function("([sel, old]) => document.querySelector(sel).src !== old",
                                    arg=[self.selector, before_src], timeout=self.deadline.ms(wait_s))
        assert self.image.evaluate(PNG_DIGEST_JS) != before_png, f"changing the {what} did not change the picture"

    def dropdown(self, label: str, index: int) -> None:
        self.page.locator(f".ca2sis-inspector .widget-dropdown:has(label:text-is('{label}')) select").select_option(
            index=index, timeout=self.deadline.ms(10))

    def slider(self, label: str, value: int) -> None:
        readout = self.page.locator(f".ca2sis-inspector .widget-slider:has(label:text-is('{label}')) .widget-readout")
        readout.click(timeout=self.deadline.ms(10))
        self.page.keyboard.press("Control+A")
        self.page.keyboard.type(str(value))
        self.page.keyboard.press("Enter")

    def status(self) -> str:
        """The status line: forward passes so far, or the last export's message."""
        return self.page.locator(".ca2sis-inspector .widget-html").first.inner_text(timeout=self.deadline.ms(10))


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CA2SIS_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{reason} (CA2SIS_REQUIRE_BROWSER=1 makes this a failure)")
    pytest.skip(reason)


def browser_or_skip() -> tuple[str, Any]:
    """Debian's Chromium and Playwright's ``sync_playwright``, or a skip (a failure in CI) saying which is missing."""
    executable = chromium_path()
    if executable is None:
        unavailable("Chromium not found (apt-get install chromium, or set CA2SIS_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed (pip install -e '.[test]')")
    return executable, sync_playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def ms(self, cap_s: float) -> float:
        """Milliseconds for the next wait: at most ``cap_s``, never past the deadline."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the browser test ran out of its time budget")
        return 1000 * min(cap_s, left)


def start_lab(tmp: Path, port: int, token: str) -> tuple[subprocess.Popen, Path]:
    for sub in ("config", "runtime", "settings", "workspaces", "ipython"):
        (tmp / sub).mkdir()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               IPYTHONDIR=str(tmp / "ipython"), PYTHONPATH=str(ROOT))
    log = tmp / "lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp / 'nb'}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]  # no look-ups on a package index
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    return spawn(cmd, env, tmp, log), log


def spawn(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """A server in its own process group (so that :func:`stop_lab` can end its kernels too), logging to ``log``."""
    with open(log, "wb") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)


def wait_until_answering(proc: subprocess.Popen, log: Path, url: str, name: str, deadline: Deadline) -> None:
    """Poll ``url`` until the server answers at all (an HTTP error status is an answer too); raise with the end
    of its log if it exits first, or once the deadline has passed."""
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:  # e.g. Voilà's 403 for a file listing: the server is up
            return
        except OSError:
            deadline.ms(60)  # raises once the budget is spent
            time.sleep(0.5)


def stop_lab(proc: subprocess.Popen) -> None:
    """SIGTERM lets the server shut its kernels down; the process group is killed if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the server's own group: its kernels, nothing else
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=10)


@pytest.mark.browser
@pytest.mark.timeout(BUDGET_S + 40)
def test_inspector_redraws_in_jupyterlab_without_console_errors(tmp_path: Path):
    executable, sync_playwright = browser_or_skip()

    (tmp_path / "nb").mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK_SOURCE.strip())])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "nb" / "inspector.ipynb")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    deadline = Deadline(BUDGET_S)
    port, token = free_port(), secrets.token_hex(16)
    proc, log = start_lab(tmp_path, port, token)
    console_errors: list[str] = []
    try:
        wait_until_answering(proc, log, f"http://127.0.0.1:{port}/api/status?token={token}", "JupyterLab", deadline)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
                page.on("pageerror", lambda error: console_errors.append(f"page error: {error}"))
                try:
                    drive(page, port, token, deadline)
                finally:
                    page.screenshot(path=str(ARTEFACTS / "inspector.png"), timeout=deadline.ms(15))
            finally:
                browser.close()
    finally:
        stop_lab(proc)
    assert not console_errors, "browser console errors:\n" + "\n".join(console_errors)


def drive(page, port: int, token: str, deadline: Deadline) -> None:
    page.goto(f"http://127.0.0.1:{port}/lab/tree/inspector.ipynb?token={token}", timeout=deadline.ms(60))
    page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-NotebookPanel')",
                           timeout=deadline.ms(60))
    page.evaluate("""async () => {
        const app = window.jupyterapp;
        const panel = app.shell.currentWidget;
        await panel.context.ready;
        await panel.sessionContext.ready;
        await app.commands.execute('notebook:run-all-cells');
    }""")
    # the cell imports torch and runs one forward pass: wait for the picture, or for a traceback
    page.wait_for_function("""() => document.querySelector('.ca2sis-inspector img.widget-image[src]')
        || /Traceback|Error/.test(document.querySelector('.jp-OutputArea')?.innerText || '')""",
                           timeout=deadline.ms(120))
    image = page.locator(".ca2sis-inspector img")
    if image.count() == 0:
        pytest.fail("the notebook cell failed:\n" + "\n".join(page.locator(".jp-OutputArea").all_inner_texts()))
    image.scroll_into_view_if_needed(timeout=deadline.ms(10))
    controls = InspectorControls(page, deadline, ".ca2sis-inspector img")
    controls.changes("layer", lambda: controls.dropdown("layer", 1), wait_s=30)
    controls.changes("class", lambda: controls.dropdown("class", 5), wait_s=30)
    assert "forward passes: 1" in controls.status(), "a control change ran the model"
