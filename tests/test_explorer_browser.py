"""The explorer in a real browser: the page alone (scripts/build_explorer.py, no notebooks executed),
served from 127.0.0.1 and driven by Debian's Chromium through Playwright.

0. A page load downloads the CA²-SIS model only: until interactive and a few seconds after, every
   response the browser received is counted; the ONNX graphs fetched are exactly CA²-SIS's, within
   8 MB (so is everything but onnxruntime-web's runtime), and no SEAN-style graph is requested.
   The comparison's button (off by default) fetches the SEAN-style graphs, once, and draws its face.
1. A brush stroke changes the map and the face; the face equals Python onnxruntime's output for the
   same map, and the library's own decode in torch (max abs ≤ 1e-3); undo brings the face back.
2. Hovering pixels never runs a model, and the argmax class the page reports is the one
   ``record_attention`` gives for that pixel, layer and head.
3. A style edit and a shape-token edit equal ``ca2sis_lib.editing``'s for both models (CA²-SIS's
   token swap; SEAN's composed mask); an edit the library refuses is refused.
4. The console stays free of errors and no request leaves 127.0.0.1.
5. The comparison turns off (SEAN stops running) and on again (no second download; SEAN catches up
   with the map painted meanwhile), by keyboard; it was turned on by a tap.

The page's own timings (interactive, decoder pass, model bytes) and the downloads are written to
``outputs/browser/explorer_speed.json`` with the load average, not asserted: the benchmark
(benchmarks/explorer_browser.py) is where they are reported. The first build runs ``npm ci`` once;
without npm or the registry the test skips, unless ``CA2SIS_REQUIRE_BROWSER=1``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script
from test_inspector_browser import CHROMIUM_ARGS, Deadline, browser_or_skip, unavailable

from ca2sis_lib import editing
from ca2sis_lib.explorer.samples import decode
from ca2sis_lib.loading import load_model
from ca2sis_lib.masks import labels_to_one_hot
from ca2sis_lib.viz import record_attention

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "outputs" / "browser"
BUDGET_S = 480  # a ceiling: about 2 min at load 20 on 2 cores, 6 min seen once at its worst
HAIR, MOUTH, EARS = 8, 7, 9
MODEL_LIMIT = 8_000_000  # bytes: "the downloaded model ≤ 8 MB" (issue 33), what a page load fetches
benchmark = load_script("benchmarks/explorer_browser.py")
build_explorer = load_script("scripts/build_explorer.py")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The explorer alone, in a served folder: <root>/explorer/."""
    root = tmp_path_factory.mktemp("site")
    try:
        build_explorer.build_explorer(root / "explorer")
    except SystemExit as error:
        if "npm" in str(error):
            unavailable(f"the explorer could not be built: {error}")
        raise
    return root


@pytest.fixture(scope="module")
def models() -> dict:
    return {"ca2sis": load_model("ca2sis_tiny_toy").eval(), "sean": load_model("sean_tiny_toy").eval()}


def face(built: Path, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Face ``index`` of the page's samples.json: image (1, 3, 64, 64) in [-1, 1], labels (1, 64, 64)."""
    document = json.loads((built / "explorer" / "samples.json").read_text())
    item = document["faces"][index]
    image = torch.from_numpy(decode(item["image"], (64, 64, 3)).copy()).float().div(127.5).sub(1.0)
    labels = torch.from_numpy(decode(item["labels"], (64, 64)).copy()).long()
    return image.permute(2, 0, 1)[None], labels[None]


def graph_files(built: Path, key: str) -> dict[str, int]:
    """The URL paths of model ``key``'s ONNX graphs as the page fetches them -> their bytes (the manifest's)."""
    manifest = json.loads((built / "explorer" / "models" / "manifest.json").read_text())
    return {f"/explorer/models/{g['file']}": g["bytes"] for g in manifest["models"][key]["graphs"].values()}


def onnx_files(downloaded: dict) -> dict[str, int]:
    return {path: size for path, size in downloaded["files"].items() if path.endswith(".onnx")}


def page_image(snapshot: dict, key: str) -> torch.Tensor:
    return torch.tensor(snapshot[key]["image"], dtype=torch.float32).reshape(1, 3, 64, 64)


def box_of(page, selector: str, deadline: Deadline) -> dict:
    """The element's box in the viewport, scrolled into view first (an edit's controls scroll the page)."""
    locator = page.locator(selector)
    locator.scroll_into_view_if_needed(timeout=deadline.ms(10))
    return locator.bounding_box(timeout=deadline.ms(10))


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def onnxruntime_image(built: Path, image: torch.Tensor, style_labels: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Python onnxruntime on the page's own graphs: styles of (image, style_labels), tokens of ``labels``."""
    import onnxruntime as ort

    folder = built / "explorer" / "models"

    def run(name: str, feeds: dict) -> list[np.ndarray]:
        return ort.InferenceSession(str(folder / f"ca2sis_{name}.onnx")).run(None, feeds)

    styles = run("style_encoder", {"image": image.numpy(), "one_hot": labels_to_one_hot(style_labels, 12).numpy()})[0]
    tokens = run("mask_embedder", {"one_hot": labels_to_one_hot(labels, 12).numpy()})[0]
    return run("decoder", {"tokens": tokens, "styles": styles})[0]


@pytest.mark.browser
@pytest.mark.timeout(BUDGET_S + 60)
def test_the_explorer_paints_inspects_and_edits_like_the_library(built: Path, models: dict):
    executable, sync_playwright = browser_or_skip()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    deadline = Deadline(BUDGET_S)
    problems: list[str] = []
    load_before = os.getloadavg()
    with benchmark.serve_folder(built) as port, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1250}, has_touch=True)
            page = context.new_page()
            downloads = benchmark.Downloads(page)
            page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("request", lambda r: problems.append(f"request to another host: {r.url}")
                    if not r.url.startswith(f"http://127.0.0.1:{port}/") else None)
            page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
            page.goto(f"http://127.0.0.1:{port}/explorer/index.html", timeout=deadline.ms(60))
            page.wait_for_function(benchmark.INTERACTIVE_JS, timeout=deadline.ms(150))
            try:
                on_load = a_page_load_fetches_the_ca2sis_model_only(page, built, downloads)
                hover_matches_record_attention(page, built, models, deadline)
                comparison = a_tap_loads_the_baseline_and_compares(page, built, models, downloads, deadline)
                edits_match_the_library(page, built, models, deadline)
                a_stroke_matches_onnxruntime_and_torch(page, built, models, deadline)
                keyboard_touch_and_palette(page, deadline)
                the_comparison_turns_off_and_on(page, built, models, downloads, deadline)
                figures = benchmark.page_figures(page, passes=5)
                figures.update({"download_on_load": on_load, "download_comparison": comparison})
            finally:
                page.screenshot(path=str(ARTEFACTS / "explorer.png"), full_page=True, timeout=deadline.ms(20))
        finally:
            browser.close()
    figures["loadavg"] = {"before": list(load_before), "after": list(os.getloadavg())}
    (ARTEFACTS / "explorer_speed.json").write_text(json.dumps(figures, indent=2) + "\n")
    assert not problems, "\n".join(problems)


def settle(page, deadline: Deadline) -> dict:
    """Wait until every change so far is computed and drawn; the page's state then."""
    page.wait_for_function("async () => { await window.explorer.settled(); return true; }", timeout=deadline.ms(60))
    return page.evaluate("() => window.explorer.snapshot()")


def a_page_load_fetches_the_ca2sis_model_only(page, built: Path, downloads) -> dict:
    """Until interactive and GRACE_S seconds after, the comparison off: CA²-SIS's graphs and no SEAN graph."""
    assert page.evaluate("() => window.explorer.error") is None
    page.wait_for_timeout(1000 * benchmark.GRACE_S)
    loaded = downloads.since(0)
    assert not [p for p in loaded["files"] if "sean" in p], f"a page load fetched the baseline: {loaded['files']}"
    assert onnx_files(loaded) == graph_files(built, "ca2sis"), "a page load fetches exactly CA²-SIS's graphs"
    assert loaded["onnx"] <= MODEL_LIMIT, f"the model downloaded on load is {loaded['onnx'] / 1e6:.2f} MB"
    rest = loaded["total"] - loaded["runtime"]  # the runtime (onnxruntime-web's WebAssembly) is not the model
    assert rest <= MODEL_LIMIT, f"a page load fetches {rest / 1e6:.2f} MB besides onnxruntime-web"
    assert set(loaded["files"]) >= {"/explorer/samples.json", "/explorer/models/manifest.json"}
    assert page.get_attribute("#compare", "aria-pressed") == "false", "the comparison is off by default"
    assert page.locator("#sean-view").is_hidden()
    sean_mb = sum(graph_files(built, "sean").values()) / 1e6
    assert f"({sean_mb:.1f} MB)" in page.locator("#compare").inner_text(), "the button says what it downloads"
    assert page.evaluate("() => window.explorer.runs.sean") == 0
    return loaded


def a_tap_loads_the_baseline_and_compares(page, built: Path, models: dict, downloads, deadline: Deadline) -> dict:
    """The comparison turned on by touch: the SEAN-style graphs are fetched, and its face is the library's."""
    mark = downloads.mark()
    box = box_of(page, "#compare", deadline)
    page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function(benchmark.COMPARING_JS, timeout=deadline.ms(150))
    assert page.evaluate("() => window.explorer.error") is None
    assert page.get_attribute("#compare", "aria-pressed") == "true"
    assert page.locator("#sean-view").is_visible()
    snapshot = settle(page, deadline)
    fetched = downloads.since(mark)
    assert onnx_files(fetched) == graph_files(built, "sean"), "turning the comparison on fetches SEAN's graphs"
    image, labels = face(built, 0)
    assert snapshot["sean"]["mask"] == snapshot["labels"] == labels.flatten().tolist()
    expected = editing.reconstruct(models["sean"], image, labels)
    assert max_abs(page_image(snapshot, "sean"), expected) <= 1e-3, "SEAN: the face's own styles on its map"
    return fetched


def the_comparison_turns_off_and_on(page, built: Path, models: dict, downloads, deadline: Deadline) -> None:
    """Off (keyboard): SEAN stops running while the map changes; on again: no new download, SEAN catches up."""
    mark = downloads.mark()
    page.focus("#compare", timeout=deadline.ms(10))
    page.keyboard.press("Space")
    page.wait_for_selector("#compare[aria-pressed='false']", timeout=deadline.ms(10))
    assert page.locator("#sean-view").is_hidden()
    runs = page.evaluate("() => ({...window.explorer.runs})")
    page.click("#swatches label:has-text('hair')", timeout=deadline.ms(10))
    page.check("input[name=brush-size][value='9']", timeout=deadline.ms(10))
    page.focus("#map", timeout=deadline.ms(10))
    page.keyboard.press("Space")
    painted = settle(page, deadline)
    after = page.evaluate("() => ({...window.explorer.runs})")
    assert after["ca2sis"] > runs["ca2sis"] and after["sean"] == runs["sean"], "SEAN ran with the comparison off"
    assert painted["sean"]["mask"] != painted["labels"]
    page.focus("#compare", timeout=deadline.ms(10))
    page.keyboard.press("Enter")
    page.wait_for_selector("#compare[aria-pressed='true']", timeout=deadline.ms(10))
    snapshot = settle(page, deadline)
    assert page.locator("#sean-view").is_visible()
    assert snapshot["sean"]["mask"] == snapshot["labels"], "SEAN did not catch up with the map"
    image, labels = face(built, 0)
    model = models["sean"]
    with torch.no_grad():
        one_hot = labels_to_one_hot(torch.tensor(snapshot["labels"]).reshape(1, 64, 64), 12)
        expected = model.decode(one_hot, model.encode_style(image, labels)).image
    assert max_abs(page_image(snapshot, "sean"), expected) <= 1e-3, "SEAN after the comparison came back"
    assert onnx_files(downloads.since(mark)) == {}, "turning the comparison on again downloaded graphs again"


def hover_matches_record_attention(page, built: Path, models: dict, deadline: Deadline) -> None:
    image, labels = face(built, 0)
    rec = record_attention(models["ca2sis"], image, labels)
    box = box_of(page, "#ca2sis-image", deadline)
    runs = page.evaluate("() => ({...window.explorer.runs})")
    checked = 0
    for layer, head in (("cross@16", -1), ("cross@32", 1), ("cross@64", -1), ("cross@64", 0)):
        page.select_option("#layer", layer, timeout=deadline.ms(10))
        page.select_option("#head", str(head), timeout=deadline.ms(10))
        mean = rec.attention_map(layer, None if head < 0 else head, "logits")[0]  # (K, h, w)
        for y, x in ((32, 32), (20, 25), (44, 30), (10, 50), (27, 40)):
            page.mouse.move(box["x"] + (x + 0.5) * box["width"] / 64, box["y"] + (y + 0.5) * box["height"] / 64)
            readout = page.locator("#readout")
            page.wait_for_function(f"() => document.querySelector('#readout').dataset.y === '{y}' && "
                                   f"document.querySelector('#readout').dataset.x === '{x}' && "
                                   f"document.querySelector('#readout').dataset.layer === '{layer}'",
                                   timeout=deadline.ms(10))
            row, col = rec.layer_cell(layer, y, x)
            scores = mean[:, row, col].sort(descending=True).values
            if float(scores[0] - scores[1]) < 1e-3:
                continue  # a tie within float rounding: either class is right
            expected = int(rec.attention_argmax(layer, None if head < 0 else head)[0, row, col])
            assert int(readout.get_attribute("data-argmax-class")) == expected, (layer, head, y, x)
            bars = json.loads(readout.get_attribute("data-weights"))  # every layer's bars, as notebook 04's
            for name, weights in rec.pixel_distribution(y, x, 0, None if head < 0 else head).items():
                assert np.abs(np.asarray(bars[name]) - weights.numpy()).max() <= 1e-3, (name, head, y, x)
            assert int(readout.get_attribute("data-mask-class")) == int(labels[0, y, x])
            checked += 1
    assert checked >= 15
    assert page.evaluate("() => ({...window.explorer.runs})") == runs, "hovering ran a model"


def click_edit(page, kind: str, cls: int, source: int, deadline: Deadline) -> dict:
    page.select_option("#edit-class", str(cls), timeout=deadline.ms(10))
    page.select_option("#edit-from", str(source), timeout=deadline.ms(10))
    page.click(f"#take-{kind}", timeout=deadline.ms(10))
    return settle(page, deadline)


def edits_match_the_library(page, built: Path, models: dict, deadline: Deadline) -> None:
    a, la = face(built, 0)
    b, lb = face(built, 6)
    snapshot = click_edit(page, "style", HAIR, 6, deadline)
    assert snapshot["styleEdits"] == [{"cls": HAIR, "from": 6}]
    for key in ("ca2sis", "sean"):
        expected = editing.transfer_style(models[key], a, la, b, lb, [HAIR])
        assert max_abs(page_image(snapshot, key), expected) <= 1e-3, f"{key}: style edit"
    page.click("#clear-edits", timeout=deadline.ms(10))
    c, lc = face(built, 3)
    snapshot = click_edit(page, "shape", MOUTH, 3, deadline)
    expected = editing.transfer_shape_without_mask(models["ca2sis"], a, la, c, lc, [MOUTH], with_style=False)
    assert max_abs(page_image(snapshot, "ca2sis"), expected) <= 1e-3, "CA²-SIS: shape-token edit"
    composed = editing.compose_masks(la, lc, [MOUTH])
    assert snapshot["sean"]["mask"] == composed.flatten().tolist(), "SEAN's composed mask"
    expected = editing.transfer_shape_with_mask(models["sean"], a, la, lc, [MOUTH])
    assert max_abs(page_image(snapshot, "sean"), expected) <= 1e-3, "SEAN: shape edit through a composed mask"
    runs = page.evaluate("() => ({...window.explorer.runs})")
    click_edit(page, "shape", EARS, 7, deadline)  # test face 7 has no ears: refused, as editing refuses it
    assert "Refused" in page.locator("#message").inner_text(timeout=deadline.ms(10))
    assert page.evaluate("() => ({...window.explorer.runs})") == runs
    page.click("#clear-edits", timeout=deadline.ms(10))
    settle(page, deadline)


def a_stroke_matches_onnxruntime_and_torch(page, built: Path, models: dict, deadline: Deadline) -> None:
    image, labels = face(built, 0)
    before = settle(page, deadline)
    page.click("#swatches label:has-text('hair')", timeout=deadline.ms(10))
    page.check("input[name=brush-size][value='5']", timeout=deadline.ms(10))
    box = box_of(page, "#map", deadline)
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.55)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.6, steps=10)
    page.mouse.up()
    after = settle(page, deadline)
    painted = torch.tensor(after["labels"]).reshape(1, 64, 64)
    assert int((painted != labels).sum()) > 20 and set(painted[painted != labels].tolist()) == {HAIR}
    assert after["ca2sis"]["labels"] == after["labels"], "the face shown was computed from an older map"
    shown = page_image(after, "ca2sis")
    assert max_abs(shown, page_image(before, "ca2sis")) > 0.05, "the stroke did not change the face"
    reference = onnxruntime_image(built, image, labels, painted)
    assert float(np.abs(shown.numpy() - reference).max()) <= 1e-3, "browser and Python onnxruntime differ"
    model = models["ca2sis"]
    with torch.no_grad():
        expected = model.decode(model.embed_mask(painted), model.encode_style(image, labels)).image
    assert max_abs(shown, expected) <= 1e-3, "browser and the library in torch differ"
    page.keyboard.press("Control+z")
    undone = settle(page, deadline)
    assert undone["labels"] == before["labels"]
    assert max_abs(page_image(undone, "ca2sis"), page_image(before, "ca2sis")) <= 1e-6


def keyboard_touch_and_palette(page, deadline: Deadline) -> None:
    page.click("#swatches label:has-text('nose')", timeout=deadline.ms(10))
    page.check("input[name=brush-size][value='1']", timeout=deadline.ms(10))
    page.focus("#map", timeout=deadline.ms(10))
    start = page.evaluate("() => window.explorer.state.pixel")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    snapshot = settle(page, deadline)
    y, x = start["y"] + 1, start["x"] + 1
    assert snapshot["labels"][y * 64 + x] == 2, "Space did not paint the cursor's pixel with the chosen class"
    box = box_of(page, "#argmax", deadline)
    page.touchscreen.tap(box["x"] + box["width"] * (12.5 / 64), box["y"] + box["height"] * (40.5 / 64))
    readout = page.locator("#readout")
    assert (readout.get_attribute("data-y"), readout.get_attribute("data-x")) == ("40", "12"), "a tap did not pick"
    page.select_option("#palette", "colour-blind safe", timeout=deadline.ms(10))
    colour = page.evaluate("() => getComputedStyle(document.querySelectorAll('#swatches .chip')[1]).backgroundColor")
    assert colour == "rgb(221, 204, 119)", "the colour-blind-safe palette did not reach the class swatches"


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_opened_from_disk_the_explorer_says_it_needs_a_server(built: Path):
    executable, sync_playwright = browser_or_skip()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto((built / "explorer" / "index.html").as_uri(), timeout=30_000)
            status = page.locator("#load-status").inner_text(timeout=10_000)
        finally:
            browser.close()
    assert "needs a web server" in status and "python -m http.server" in status
