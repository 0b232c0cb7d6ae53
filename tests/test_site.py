"""The course site (`make book`): built from the smoke-executed notebooks and docs/, read in Chromium.

The notebooks are the ones the notebook test executed in this session (conftest.SmokeRuns); alone,
this test executes them itself. The site is served from 127.0.0.1 and every page is opened in
headless Chromium (Debian's, driven by Playwright, as in test_inspector_browser.py): no console
error, no failed request, every image decoded, every internal link (and its #anchor) found, and
the search page finds a word of the notebooks. The landing page's screenshot is kept under
``outputs/browser/``.
"""

from __future__ import annotations

import functools
import html
import http.server
import re
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from conftest import load_script
from test_inspector_browser import CHROMIUM_ARGS, Deadline, browser_or_skip, free_port

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "outputs" / "browser"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
build_site = load_script("scripts/build_site.py")
colab = load_script("scripts/colab.py")

BROKEN_IMAGES_JS = """async () => {
    const images = Array.from(document.images);
    images.forEach((img) => { img.loading = 'eager'; });
    await Promise.all(images.map((img) => img.decode().catch(() => null)));
    return images.filter((img) => !(img.complete && img.naturalWidth > 0)).map((img) => img.src);
}"""


@pytest.fixture(scope="module")
def site(smoke_runs, tmp_path_factory) -> Path:
    executed = smoke_runs.run_all()
    return build_site.build(executed, tmp_path_factory.mktemp("book") / "site")


def test_site_holds_every_notebook_and_page(site: Path):
    repo, branch = colab.read_student_location(ROOT)  # the students' site opens the students' copy in Colab
    assert (site / "index.html").exists() and (site / "docs" / "index.html").exists()
    for page in (ROOT / "docs").glob("*.md"):
        on_site = page.name not in build_site.INSTRUCTOR_PAGES  # the students' site leaves those out
        assert (site / "docs" / f"{page.stem}.html").exists() == on_site, f"docs/{page.name}: on the site {on_site}"
    landing = (site / "docs" / "index.html").read_text()
    for notebook in NOTEBOOKS:
        page = (site / "notebooks" / f"{notebook.stem}.html").read_text()
        assert colab.colab_url(repo, branch, notebook.name) in page, f"{notebook.stem}: no Colab link"
        assert 'alt="Open In Colab"' in page and "_images/colab-badge.svg" in page
        assert f"notebooks/{notebook.stem}.html" in landing, f"{notebook.stem} is not linked from the landing page"
        assert "application/vnd.jupyter.widget-view+json" not in page
        assert "YOUR CODE HERE" in page and "BEGIN SOLUTION" not in page, f"{notebook.stem}: a solution is on the site"
        assert "A quick run." in page, f"{notebook.stem}: a smoke run's page has no banner saying so"
        # the Colab set-up code is folded (MyST-NB's hide-input): the page opens on its question
        setup = re.search(r'<div class="([^"]*)"[^>]*>\s*<details class="hide above-input">', page)
        assert setup and "tag_hide-input" in setup[1], f"{notebook.stem}: the set-up cell is not folded"
        assert page.index("tag_hide-input") > page.index("<h1"), f"{notebook.stem}: the set-up comes before the title"
    for page in site.rglob("*.html"):  # the site is self-contained: nothing is loaded from elsewhere
        assert not re.search(r"""<(script|img|link)[^>]+(src|href)="(https?:)?//""", page.read_text().replace(
            'rel="canonical"', "")), f"{page.relative_to(site)} loads a resource from another host"


def test_the_site_hides_solutions_unless_asked_and_marks_smoke_runs(tmp_path: Path):
    import nbformat

    solution = nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION",
                                         metadata={"nbgrader": {"solution": True, "grade": False, "locked": False,
                                                                "grade_id": "f", "schema_version": 3}})
    solution.outputs = [nbformat.v4.new_output("stream", text="42\n")]
    plain = nbformat.v4.new_code_cell("print(1)")
    plain.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    verdicts = nbformat.v4.new_code_cell("print(exercises.statuses())")
    verdicts.outputs = [nbformat.v4.new_output("stream", text="{'f': 'correct'}\n")]
    nb = nbformat.v4.new_notebook(cells=[solution, verdicts, plain],
                                  metadata={"papermill": {"parameters": {"SMOKE": True}}})
    executed = tmp_path / "00_anatomy_of_ca2sis.ipynb"
    nbformat.write(nb, executed)
    for with_solutions in (False, True):
        staged = tmp_path / f"staged_{with_solutions}.ipynb"
        build_site.stage_notebook(executed, staged, set(), "owner/name", "main", with_solutions)
        cells = nbformat.read(staged, as_version=4).cells
        assert cells[1].source.startswith("> **A quick run.**")  # after the badge
        shown = next(c for c in cells if "def f" in c.source)
        assert ("return 42" in shown.source) == with_solutions and bool(shown.outputs) == with_solutions
        assert bool(next(c for c in cells if "statuses" in c.source).outputs) == with_solutions  # no "correct"
        assert cells[-1].outputs, "a cell without a solution keeps its outputs"


def test_the_students_site_names_no_reference_answers(tmp_path: Path):
    """The students' site leaves out the instructors' page (docs/exercises.md names the file holding every
    reference answer) and links to it nowhere; the instructors' copy (--with-solutions) keeps it."""
    import shutil

    executed = tmp_path / "executed"
    executed.mkdir()
    for notebook in NOTEBOOKS:  # the source notebooks stand in for executed ones: staging reads cells only
        shutil.copy(notebook, executed / notebook.name)
    for with_solutions in (False, True):
        staging = tmp_path / f"staged_{with_solutions}"
        build_site.stage(executed, staging, with_solutions)
        pages = {p.name for p in (staging / "docs").glob("*.md")}
        text = "\n".join(p.read_text() for p in sorted(staging.rglob("*")) if p.suffix in (".md", ".ipynb"))
        assert ("exercises.md" in pages) == with_solutions
        assert ("_reference" in text) == with_solutions, "the reference answers' file is named on the site"
        repo, branch = colab.read_location(ROOT) if with_solutions else colab.read_student_location(ROOT)
        badges = re.findall(r"colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/([^/]+)/", text)
        assert badges and set(badges) == {(repo, branch)}, "a Colab link to the wrong copy of the notebooks"
        if not with_solutions:
            assert not re.search(r"\]\([^)]*exercises\.md", text), "a link to the instructors' page"
            assert "index.md" in pages and "architecture.md" in pages


def test_the_students_site_drops_every_output_that_shows_the_verdicts(tmp_path: Path):
    """A closing cell that displays the metrics dict with the exercises' verdicts ('correct' beside stubs)."""
    import nbformat

    shown = nbformat.v4.new_code_cell("metrics")
    shown.outputs = [nbformat.v4.new_output("execute_result", data={
        "text/plain": "{'exercises': {'tensor_shapes': 'correct'},\n 'exercises_passed': 1, 'steps': 4}"},
        execution_count=1)]
    printed = nbformat.v4.new_code_cell("print(METRICS)")
    printed.outputs = [nbformat.v4.new_output("stream", text="{\"exercises\": {\"to_one_hot\": \"correct\"}}\n")]
    numbers = nbformat.v4.new_code_cell("print(shown_metrics(metrics))")
    numbers.outputs = [nbformat.v4.new_output("stream", text="{'steps': 4}\n")]
    executed = tmp_path / "00_anatomy_of_ca2sis.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[shown, printed, numbers]), executed)
    for with_solutions in (False, True):
        staged = tmp_path / f"staged_{with_solutions}.ipynb"
        build_site.stage_notebook(executed, staged, set(), "owner/name", "main", with_solutions)
        cells = [c for c in nbformat.read(staged, as_version=4).cells if c.cell_type == "code"]
        assert [bool(c.outputs) for c in cells] == [with_solutions, with_solutions, True]


def test_a_build_without_executed_notebooks_says_what_to_run(tmp_path: Path):
    with pytest.raises(SystemExit, match="make run"):
        build_site.build(tmp_path, tmp_path / "site")


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def link_problems(site: Path, base: str, page_url: str, hrefs: list[str]) -> list[str]:
    """Internal links of one page whose file or #anchor does not exist in the built site."""
    problems = []
    for href in hrefs:
        url = urlsplit(urljoin(page_url, href))
        if not href or href.startswith(("mailto:", "javascript:")) or f"{url.scheme}://{url.netloc}" != base:
            continue
        target = site / unquote(url.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"{page_url}: {href} -> no such file")
        elif url.fragment and target.suffix == ".html":
            ids = set(re.findall(r'\bid="([^"]+)"', target.read_text()))
            if html.escape(unquote(url.fragment)) not in ids and unquote(url.fragment) not in ids:
                problems.append(f"{page_url}: {href} -> no #{url.fragment}")
    return problems


def failed(request, problems: list[str]) -> None:
    """A failed request is a problem, unless the next ``goto`` cut it short (the search page fetches the
    pages it found, to show a line of each: leaving it aborts those)."""
    if request.failure != "net::ERR_ABORTED":
        problems.append(f"request failed ({request.failure}): {request.url}")


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_every_page_loads_cleanly_in_chromium(site: Path):
    executable, sync_playwright = browser_or_skip()

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                   if "_static" not in p.parts and p != site / "index.html")  # that one redirects: checked below
    deadline = Deadline(240)
    server, port = serve(site)
    base = f"http://127.0.0.1:{port}"
    problems: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
                page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
                page.on("requestfailed", lambda request: failed(request, problems))
                page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
                for name in pages:
                    url = f"{base}/{name}"
                    page.goto(url, wait_until="load", timeout=deadline.ms(30))
                    broken = page.evaluate(BROKEN_IMAGES_JS)
                    problems += [f"{name}: image did not load: {src}" for src in broken]
                    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
                    problems += link_problems(site, base, url, hrefs)
                page.goto(f"{base}/search.html?q=attention", wait_until="load", timeout=deadline.ms(30))
                page.wait_for_function("() => document.querySelectorAll('#search-results li').length > 0",
                                       timeout=deadline.ms(60))
                page.goto(f"{base}/index.html", wait_until="load", timeout=deadline.ms(30))
                page.wait_for_url("**/docs/index.html", timeout=deadline.ms(30))
                nav = page.eval_on_selector_all("nav a.reference.internal", "links => links.map(a => a.href)")
                page.screenshot(path=str(ARTEFACTS / "site_landing.png"), full_page=False)
                missing = [nb.stem for nb in NOTEBOOKS if not any(f"notebooks/{nb.stem}.html" in h for h in nav)]
                assert not missing, f"the navigation lacks {missing}"
            finally:
                browser.close()
    finally:
        server.shutdown()
    assert len(pages) >= len(NOTEBOOKS) + 3
    assert not problems, "\n".join(problems[:40])
