"""The course on Colab's runtime, emulated from the package list Google publishes for it.

``scripts/colab_runtime.py`` builds (once per input, cached) a virtual environment with Colab's
packages at Colab's versions: Python 3.13, ipywidgets 7.7.1, widgetsnbextension 3.6.10, IPython
7.34, notebook 6.5.7, numpy 2.1.3, torch 2.11 (the CPU-capable PyPI build of Colab's CUDA one)
and ~680 more (tests/colab_runtime/). Each session works in a copy of it made of hard links, so
whatever the first cell installs changes the copy and the cached emulation stays as Colab has it.
In it:

1. every notebook's first cell runs as on Colab (a stand-in ``google.colab`` module; the repository
   cloned from a local bare copy of this working tree): it installs the package, says in one line
   what it added, changes the version of no package Colab has, and changes nothing when run again;
2. every notebook runs top to bottom in its quick setting with nbclient, and fails on **any** error
   output (an error raised while displaying a widget included);
3. the apps' widget tests run with Colab's ipywidgets 7.7.1 (tests/test_app_widgets.py), and notebooks
   04 and 05 open in classic Notebook 6.5 with widgetsnbextension 3.6 (Colab's front-end pair) in
   Chromium: the inspector and the editor render, respond, and log no console error.

What is not emulated (Colab's own front end, its GPU, its file system) is in docs/colab_site_app.md.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from pathlib import Path

import nbformat
import pytest
from conftest import CELL_TIMEOUT_S, bare_repository, error_outputs, load_script
from test_inspector_browser import (
    CHROMIUM_ARGS,
    PNG_DIGEST_JS,
    Deadline,
    InspectorControls,
    browser_or_skip,
    free_port,
    spawn,
    stop_lab,
    wait_until_answering,
)
from test_notebooks import CHECKS, _check_exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
runtime = load_script("scripts/colab_runtime.py")
colab = load_script("scripts/colab.py")
ARTEFACTS = ROOT / "outputs" / "browser"
STARTUP = "import google.colab  # Colab's kernel imports its own module at start; here a stand-in\n"

pytestmark = pytest.mark.colab


class ColabRuntime:
    """One emulated Colab session: a copy of the emulation, /content, the stand-in google.colab and the environment."""

    def __init__(self, emulation: Path, tmp: Path) -> None:
        self.emulation, self.tmp = emulation, tmp
        self.venv = runtime.session_copy(emulation, tmp / "venv")
        self.python = str(self.venv / "bin" / "python")
        self.content = tmp / "content"
        self.content.mkdir()
        stub = tmp / "stub" / "google" / "colab"  # a portion of the `google` namespace, beside protobuf's
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text('"""Stand-in for Colab\'s own module: notebooks test for its presence."""\n')
        startup = tmp / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        (startup / "00-colab.py").write_text(STARTUP)
        kernel = tmp / "jupyter" / "kernels" / "python3"  # the kernel every notebook names: this session's Python
        kernel.mkdir(parents=True)
        (kernel / "kernel.json").write_text(json.dumps({
            "argv": [self.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (Colab emulation)", "language": "python"}))
        self.env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        self.env.update(PYTHONPATH=str(tmp / "stub"), IPYTHONDIR=str(tmp / "ipython"),
                        CA2SIS_COLAB_DIR=str(self.content), PATH=f"{self.venv / 'bin'}:{self.env['PATH']}",
                        JUPYTER_PATH=str(tmp / "jupyter"), JUPYTER_DATA_DIR=str(tmp / "jupyter-data"),
                        JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
        self.preinstalled = json.loads((emulation / "emulation.json").read_text())["packages"]

    def run(self, args: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run([self.python, *args], cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def changed_versions(self) -> dict[str, tuple[str, str]]:
        """Colab's packages whose version this session now shows differently: {name: (Colab's, now)}."""
        now = runtime.installed_versions(self.python)
        return {name: (version, now.get(name)) for name, version in self.preinstalled.items()
                if now.get(name) != version}


@pytest.fixture(scope="session")
def emulation() -> Path:
    try:
        return runtime.build()
    except Exception as error:  # noqa: BLE001 - any failure to build is reported the same way
        if os.environ.get("CA2SIS_REQUIRE_COLAB") == "1":
            raise
        pytest.skip(f"the Colab runtime emulation could not be built here: {error}")


@pytest.fixture(scope="session")
def repository(tmp_path_factory) -> str:
    return bare_repository(tmp_path_factory.mktemp("repository"))


@pytest.fixture(scope="session")
def colab_session(emulation, repository, tmp_path_factory) -> ColabRuntime:
    """A session whose repository is cloned (as the first cell would) and installed by the first notebook run."""
    session = ColabRuntime(emulation, tmp_path_factory.mktemp("colab"))
    subprocess.run(["git", "clone", "-q", "--depth", "1", repository, str(session.content / "ca2sis")], check=True)
    return session


def first_cell(notebook: Path, url: str) -> str:
    """The notebook's first code cell, pointed at ``url`` instead of GitHub."""
    repo, branch = colab.read_location(ROOT)
    source = next(c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code").source
    return source.replace(f'REPO_URL = "{colab.repo_url(repo)}"', f'REPO_URL = "{url}"').replace(
        f'REPO_BRANCH = "{branch}"', 'REPO_BRANCH = "main"')


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_every_first_cell_installs_once_and_changes_nothing_colab_has(emulation, repository, tmp_path: Path):
    session = ColabRuntime(emulation, tmp_path)
    assert {"ipywidgets": "7.7.1", "notebook": "6.5.7", "ipython": "7.34.0"}.items() <= session.preinstalled.items()
    for k, notebook in enumerate(NOTEBOOKS):
        cell = tmp_path / f"first_cell_{k}.py"
        cell.write_text(f"import google.colab\n{first_cell(notebook, repository)}")
        done = session.run([str(cell)], cwd=tmp_path)
        assert done.returncode == 0, f"{notebook.name}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        changed = session.changed_versions()
        assert not changed, f"{notebook.name}'s first cell changed Colab's packages (Colab's, now): {changed}"
        assert "running on Colab" in done.stdout, done.stdout
        said = [line for line in done.stdout.splitlines() if line.startswith("ca2sis set-up:")]
        assert len(said) == 1, f"{notebook.name}: the set-up says what it did in one line:\n{done.stdout}"
        if k == 0:
            assert "installed ca2sis_lib" in said[0] and "nothing Colab had was changed" in said[0], said[0]
        else:
            assert "already installed" in said[0], f"{notebook.name}: a second first cell installed again: {said[0]}"
    added = set(runtime.installed_versions(session.python)) - set(session.preinstalled)
    assert "ca2sis-lib" in added and not added & {"torch", "numpy", "ipywidgets", "ipython"}, added


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_apps_work_with_colabs_ipywidgets_7(colab_session: ColabRuntime):
    clone = colab_session.content / "ca2sis"
    install = colab_session.run(["-c", f"from ca2sis_lib.colab_setup import install; install({str(clone)!r})"],
                                cwd=clone)
    assert install.returncode == 0, install.stderr[-3000:]
    done = colab_session.run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_app_widgets.py"], cwd=clone)
    asked = "import ipywidgets, IPython; print(ipywidgets.__version__, IPython.__version__)"
    versions = colab_session.run(["-c", asked], cwd=clone).stdout.split()
    assert versions == ["7.7.1", "7.34.0"], versions
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_colab_without_error_output(colab_session: ColabRuntime, path: Path):
    work = colab_session.tmp / "work" / path.stem
    work.mkdir(parents=True)
    out_dir, executed = work / "outputs", work / path.name
    params = json.dumps({"SMOKE": True, "OUTPUT_DIR": str(out_dir)})
    done = colab_session.run([str(ROOT / "tests" / "colab_runtime" / "execute.py"), str(path), str(executed),
                              str(work), params, str(CELL_TIMEOUT_S)], cwd=work, timeout=2300)
    assert executed.exists(), done.stderr[-4000:]
    errors = error_outputs(executed)
    assert not errors and done.returncode == 0, f"{path.name} on Colab:\n" + "\n".join(errors) + done.stderr[-3000:]
    metrics = json.loads((out_dir / "metrics.json").read_text())
    metrics["_files"] = {p.name: json.loads(p.read_text()) for p in out_dir.glob("*.json") if p.name != "metrics.json"}
    CHECKS[path.stem](metrics)  # the same findings as in the test environment
    _check_exercises(path.stem, metrics)


# -- the widgets in Colab's front-end pair: classic Notebook 6.5 + widgetsnbextension 3.6 (ipywidgets 7) -----
BROWSER_BUDGET_S = 900


# What the emulated front end itself logs, unrelated to the course: Notebook 6.5 probes for the widgets of
# ipywidgets < 7 (a 404), and the Colab badge's image lies on the internet, which this machine cannot reach
FRONT_END_NOISE = ("/nbextensions/widgets/notebook/js/extension.js", "colab.research.google.com/assets/colab-badge.svg")


def front_end_noise(text: str, url: str) -> bool:
    return any(part in text or part in url for part in FRONT_END_NOISE)


def start_classic_notebook(session: ColabRuntime, folder: Path, port: int, token: str) -> tuple:
    """Colab's front end is not public; its widget protocol is ipywidgets 7's, which classic Notebook 6.5 with
    widgetsnbextension 3.6 speaks. The server and its kernel run in the session's copy of the emulation. Of the
    notebook extensions Colab's packages bring, only the widgets' is loaded: Colab's front end loads none of them
    (ipyevents', for one, is declared without its files)."""
    nbconfig = session.venv / "etc" / "jupyter" / "nbconfig" / "notebook.d"  # read in name order, the last wins
    declared = [json.loads(p.read_text()).get("load_extensions", {}) for p in nbconfig.glob("*.json")]
    others = {name: False for found in declared for name in found if name != "jupyter-js-widgets/extension"}
    (nbconfig / "zz-colab-emulation.json").write_text(json.dumps({"load_extensions": others}))  # a new file
    env = dict(session.env, OMP_NUM_THREADS="2")
    cmd = [session.python, "-m", "notebook", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--NotebookApp.port_retries=0", f"--NotebookApp.token={token}",
           f"--NotebookApp.notebook_dir={folder}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = session.tmp / f"notebook-{port}.log"
    return spawn(cmd, env, folder, log), log


def smoke_copy(path: Path, folder: Path) -> Path:
    """The notebook as a student opens it, with the quick setting written after its parameters cell."""
    nb = nbformat.read(path, as_version=4)
    tagged = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(tagged + 1, nbformat.v4.new_code_cell(f"SMOKE = True\nOUTPUT_DIR = {str(folder / 'out')!r}"))
    nbformat.write(nb, folder / path.name)
    return folder / path.name


def run_all_and_wait(page, name: str, selector: str, port: int, token: str, deadline: Deadline,
                     console: list[str]) -> None:
    # widgetsnbextension 3.6 (ipywidgets 7) asks a new kernel which widgets it holds (ipywidgets 7 has no
    # control comm, so it falls back to comm_info_request) and, once answered, re-renders every cell that
    # shows a widget, and a view drawn before that is lost (its model_id is blanked). A person cannot press
    # Run All before the answer; a script can, and the request then waits behind every cell. So the test
    # runs the notebook once the front end has its answer, as a person would.
    answered: list[bool] = []

    def watch(socket) -> None:
        socket.on("framereceived", lambda frame: answered.append(True)
                  if isinstance(frame, str) and '"comm_info_reply"' in frame else None)

    page.on("websocket", watch)
    page.goto(f"http://127.0.0.1:{port}/notebooks/{name}?token={token}", timeout=deadline.ms(60))
    page.wait_for_function("() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
                           " && Jupyter.notebook.kernel.is_connected()", timeout=deadline.ms(120))
    while not answered:
        try:
            page.wait_for_timeout(deadline.ms(0.1))
        except TimeoutError:  # the budget is spent
            pytest.fail(f"{name}: the widget front end never heard from the kernel (no comm_info_reply)")
    page.wait_for_timeout(500)  # its re-render of the (empty) outputs is promise callbacks, done by then
    page.evaluate("() => Jupyter.notebook.execute_all_cells()")
    # wait for the whole notebook (its later cells drive the app too), or for an error
    page.wait_for_function("""() => document.querySelector('.output_error') || (Jupyter.notebook.kernel_busy === false
            && Jupyter.notebook.get_cells().every(c => c.cell_type !== 'code' || c.input_prompt_number !== '*')
            && document.querySelectorAll('.output_area').length > 3)""", timeout=deadline.ms(600))
    try:  # the front end draws the widget view after the kernel sent its state
        page.wait_for_selector(f"{selector} img.widget-image[src]", timeout=deadline.ms(60))
    except Exception:  # noqa: BLE001 — said below, with the page's errors
        pass
    errors = page.locator(".output_error").all_inner_texts()
    assert not errors, f"{name}: error output in the page:\n" + "\n".join(e[-1500:] for e in errors)
    assert page.locator(f"{selector} img.widget-image").count() == 1, (
        f"{name}: the app did not render ({page.locator(selector).count()} app views, "
        f"{page.locator('.widget-image').count()} widget images, {page.locator('.jupyter-widgets').count()} widgets; "
        "outputs: " + " | ".join(t[:300] for t in page.locator(".output_subarea").all_inner_texts()[-12:]) + "; "
        "console errors: " + " | ".join(console) + ")")


def drive_inspector(page, deadline: Deadline) -> None:
    controls = InspectorControls(page, deadline)
    controls.image.scroll_into_view_if_needed(timeout=deadline.ms(10))
    controls.changes("query pixel", lambda: controls.slider("pixel row y", 12))  # the status then counts passes
    passes = re.search(r"forward passes: \d+", controls.status())
    assert passes, f"the status line does not count forward passes: {controls.status()!r}"
    controls.changes("layer", lambda: controls.dropdown("layer", 1))
    controls.changes("head", lambda: controls.dropdown("head", 1))
    assert passes[0] in controls.status(), "a control change ran the model"


def drive_editor(page, deadline: Deadline) -> None:
    image = page.locator(".ca2sis-editor img.widget-image")
    image.scroll_into_view_if_needed(timeout=deadline.ms(10))
    before_src, before_png = image.get_attribute("src"), image.evaluate(PNG_DIGEST_JS)
    operation = page.locator(".ca2sis-editor .widget-dropdown:has(label:text-is('operation')) select")
    operation.select_option(label="style: global", timeout=deadline.ms(10))
    page.wait_for_function("(old) => document.querySelector('.ca2sis-editor img.widget-image').src !== old",
                           arg=before_src, timeout=deadline.ms(60))
    assert image.evaluate(PNG_DIGEST_JS) != before_png, "a style edit did not change the picture"
    status = page.locator(".ca2sis-editor .widget-html").first.inner_text(timeout=deadline.ms(10))
    assert re.search(r"edits run: [1-9]", status), status


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.timeout(BROWSER_BUDGET_S + 60)
def test_inspector_and_editor_in_colabs_widget_front_end(colab_session: ColabRuntime):
    executable, sync_playwright = browser_or_skip()
    folder = colab_session.tmp / "browser"
    folder.mkdir()
    notebooks = {p.stem[:2]: smoke_copy(p, folder) for p in NOTEBOOKS if p.stem[:2] in ("04", "05")}
    deadline, port, token = Deadline(BROWSER_BUDGET_S), free_port(), secrets.token_hex(16)
    proc, log = start_classic_notebook(colab_session, folder, port, token)
    console_errors: list[str] = []
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    try:
        wait_until_answering(proc, log, f"http://127.0.0.1:{port}/api/status?token={token}", "Notebook 6.5", deadline)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            try:
                for key, selector, drive in (("04", ".ca2sis-inspector", drive_inspector),
                                             ("05", ".ca2sis-editor", drive_editor)):
                    page = browser.new_page(viewport={"width": 1400, "height": 1100})
                    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error"
                            and not front_end_noise(msg.text, msg.location.get("url", "")) else None)
                    page.on("pageerror", lambda error: console_errors.append(f"page error: {error}"))
                    try:
                        run_all_and_wait(page, notebooks[key].name, selector, port, token, deadline, console_errors)
                        drive(page, deadline)
                    finally:
                        page.screenshot(path=str(ARTEFACTS / f"colab_emulation_{key}.png"), timeout=deadline.ms(15))
                        page.close()
            finally:
                browser.close()
    finally:
        stop_lab(proc)
    assert not console_errors, "browser console errors:\n" + "\n".join(console_errors)
