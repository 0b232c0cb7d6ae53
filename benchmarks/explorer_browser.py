"""The explorer's speed in headless Chromium: `python benchmarks/explorer_browser.py [--rounds 3]`.

Builds the explorer alone (scripts/build_explorer.py), serves it from 127.0.0.1 and opens it in a
fresh Debian Chromium per round (no cache), then reads what the page measured itself:

    interactive     navigation start -> first CA²-SIS face drawn and the controls enabled
    download        every response the browser received (Playwright's network sizes), by kind:
                    ONNX graphs, onnxruntime-web's runtime, the rest (page, faces, manifest).
                    "on load": until interactive and GRACE_S seconds after, the comparison off
                    (the page's default: the CA²-SIS graphs only); "comparison": what turning
                    the SEAN-style comparison on fetches (its graphs)
    decoder pass    one CA²-SIS decoder run (session.run, onnxruntime-web's WebAssembly backend,
                    one thread), timed 10 times per round after the page's own first runs
    comparison      the comparison's button pressed -> the first SEAN-style face drawn (its graphs
                    fetched and compiled, its style codes and decoder run)

Wall times grow with the machine's load (the page's one thread waits its turn for a core), so the
CPU time of the renderer's main thread (from /proc, this process's descendants only) is read
around the same passes: what a pass costs a core, which is its wall time on an idle machine. Until
interactive, the CPU time of the main thread and of all Chromium's threads (V8 compiles the
WebAssembly runtime on background threads) is read the same way.

Writes benchmarks/results/explorer_browser.{json,md} (``--out`` another path without suffix) with the
load average before and after, the CPU and its flags: the machine's speed drifts, so a figure means
something only beside its load.
``--screenshot PATH`` also keeps a picture of the page in use (an edit, a stroke, a pixel).
The browser test (tests/test_explorer_browser.py) drives the page with the same helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TARGETS = {"decoder_ms": 300, "interactive_ms": 3000, "model_bytes_on_load": 8_000_000}  # from the course's issue
GRACE_S = 3  # seconds after interactive that still count as the page's load

INTERACTIVE_JS = "() => window.explorer && (window.explorer.ready || window.explorer.error)"
COMPARING_JS = "() => window.explorer && (window.explorer.seanReadyMs || window.explorer.error)"
FIGURES_JS = """() => {
    const e = window.explorer;
    return {interactive_ms: e.interactiveMs, sean_asked_ms: e.seanAskedMs, sean_ready_ms: e.seanReadyMs,
            model_bytes: e.modelBytes, page_timings: e.timings, error: e.error};
}"""


class Downloads:
    """Every response a page received: its URL and body bytes, as the browser's network stack counts them."""

    def __init__(self, page: Any) -> None:
        self.requests: list[Any] = []
        page.on("requestfinished", lambda request: self.requests.append(request))  # Playwright wants a function

    def mark(self) -> int:
        """A point in the log, for :meth:`since`."""
        return len(self.requests)

    def since(self, mark: int = 0) -> dict[str, Any]:
        """The responses after ``mark``: ``files`` (path -> bytes) and bytes by kind (``onnx``: the graphs,
        ``runtime``: onnxruntime-web's files under ort/, ``other``: page, faces, manifest) and ``total``."""
        files: dict[str, int] = {}
        for request in self.requests[mark:]:
            path = urllib.parse.urlsplit(request.url).path
            files[path] = files.get(path, 0) + request.sizes()["responseBodySize"]
        kinds = {"onnx": 0, "runtime": 0, "other": 0}
        for path, size in files.items():
            kinds["onnx" if path.endswith(".onnx") else "runtime" if "/ort/" in path else "other"] += size
        return {"files": files, **kinds, "total": sum(files.values())}


def chromium_cpu_seconds() -> dict[str, float]:
    """CPU time (user + system, s) of the Chromium processes this process started (through Playwright's
    driver), from /proc: ``all`` of them, and the renderers' main threads (``renderer_main``: where the
    page's JavaScript and onnxruntime-web's WebAssembly run; the other threads compile WebAssembly).
    Zeros where /proc cannot be read."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))

    def ticks(stat_file: Path) -> int:
        fields = stat_file.read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime

    total = main = 0
    todo = list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        with contextlib.suppress(OSError, IndexError, ValueError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"chrom" not in command:
                continue
            total += ticks(Path(f"/proc/{pid}/stat"))
            if b"--type=renderer" in command:
                main += ticks(Path(f"/proc/{pid}/task/{pid}/stat"))
    hz = os.sysconf("SC_CLK_TCK")
    return {"all": total / hz, "renderer_main": main / hz}


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[int]:
    """A static file server for ``folder`` on 127.0.0.1 (any free port, yielded), stopped on exit."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def page_figures(page: Any, passes: int = 10) -> dict[str, Any]:
    """What the loaded explorer measured (see the module doc), and ``passes`` more decoder passes timed
    by the page and by the renderer's CPU time; waits until the page is interactive."""
    page.wait_for_function(INTERACTIVE_JS, timeout=180_000)
    figures = page.evaluate(FIGURES_JS)
    if figures["error"]:
        raise RuntimeError(f"the explorer failed: {figures['error']}")
    cpu = chromium_cpu_seconds()["renderer_main"]
    figures["decoder_ms"] = page.evaluate("(n) => window.explorer.timeDecoder(n)", passes)
    figures["decoder_cpu_ms"] = 1000 * (chromium_cpu_seconds()["renderer_main"] - cpu) / passes
    return figures


def compare(page: Any) -> dict[str, Any]:
    """Turn the SEAN-style comparison on (the page's own button) and wait for its first face: the page's figures."""
    page.click("#compare")
    page.wait_for_function(COMPARING_JS, timeout=180_000)
    figures = page.evaluate(FIGURES_JS)
    if figures["error"]:
        raise RuntimeError(f"the explorer failed: {figures['error']}")
    return figures


def use_the_page(page: Any) -> None:
    """A student's few steps, for the screenshot (the comparison on): hair style from another face, a stroke
    of hair, a pixel."""
    page.select_option("#edit-class", "8")
    page.select_option("#edit-from", "6")
    page.click("#take-style")
    page.click("#swatches label:has-text('hair')")
    page.check("input[name=brush-size][value='5']")
    page.locator("#map").scroll_into_view_if_needed()
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.28, box["y"] + box["height"] * 0.62, steps=8)
    page.mouse.up()
    page.evaluate("() => window.explorer.settled()")
    page.locator("#ca2sis-image").scroll_into_view_if_needed()
    image = page.locator("#ca2sis-image").bounding_box()
    page.mouse.move(image["x"] + image["width"] * 0.42, image["y"] + image["height"] * 0.4)


def run(rounds: int, screenshot: Path | None) -> dict[str, Any]:
    sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "benchmarks")]
    from bench_report import machine
    from build_explorer import build_explorer
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    measured = []
    with tempfile.TemporaryDirectory() as tmp:
        build_explorer(Path(tmp) / "explorer")
        ort_about = (Path(tmp) / "explorer" / "ort" / "ABOUT.txt").read_text().split(" (")[0]
        with serve_folder(Path(tmp)) as port, sync_playwright() as playwright:
            for r in range(rounds):
                browser = playwright.chromium.launch(executable_path=os.environ.get("CA2SIS_CHROMIUM",
                                                                                      "/usr/bin/chromium"),
                                                     headless=True, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1250})
                    downloads = Downloads(page)
                    started, cpu = time.perf_counter(), chromium_cpu_seconds()
                    page.goto(f"http://127.0.0.1:{port}/explorer/index.html")
                    page.wait_for_function(INTERACTIVE_JS, timeout=180_000)
                    spent = {k: v - cpu[k] for k, v in chromium_cpu_seconds().items()}
                    page.wait_for_timeout(1000 * GRACE_S)
                    on_load = downloads.since(0)
                    figures = page_figures(page)
                    mark = downloads.mark()
                    compared = compare(page)
                    figures.update({
                        "interactive_cpu_ms": {k: 1000 * v for k, v in spent.items()},
                        "download_on_load": on_load, "download_comparison": downloads.since(mark),
                        "model_bytes": compared["model_bytes"], "page_timings": compared["page_timings"],
                        "comparison_ms": compared["sean_ready_ms"] - compared["sean_asked_ms"],
                        "wall_s": time.perf_counter() - started, "chromium": browser.version,
                    })
                    measured.append(figures)
                    print(f"round {r + 1}: interactive {figures['interactive_ms']:.0f} ms, decoder median "
                          f"{statistics.median(figures['decoder_ms']):.0f} ms ({figures['decoder_cpu_ms']:.0f} ms "
                          f"of CPU); downloaded on load {on_load['onnx'] / 1e6:.2f} MB of graphs "
                          f"({on_load['total'] / 1e6:.2f} MB in all), the comparison "
                          f"{figures['download_comparison']['onnx'] / 1e6:.2f} MB more in "
                          f"{figures['comparison_ms']:.0f} ms", flush=True)
                    if screenshot is not None and r == rounds - 1:
                        use_the_page(page)
                        page.screenshot(path=str(screenshot), full_page=True)
                finally:
                    browser.close()
    passes = [t for m in measured for t in m["decoder_ms"]]
    interactive = [m["interactive_ms"] for m in measured]
    bytes_ = measured[0]["model_bytes"]
    comparison = [m["comparison_ms"] for m in measured]

    def page_median(graph: str) -> float:
        return statistics.median(t for m in measured for t in m["page_timings"][graph])

    def download(which: str) -> dict[str, int]:  # the same files every round: the first round's sizes
        return {k: v for k, v in measured[0][f"download_{which}"].items() if k != "files"}

    summary = {
        "decoder_ms_median": statistics.median(passes), "decoder_ms_range": [min(passes), max(passes)],
        "interactive_ms_median": statistics.median(interactive), "interactive_ms_range": [min(interactive),
                                                                                          max(interactive)],
        "decoder_cpu_ms_median": statistics.median(m["decoder_cpu_ms"] for m in measured),
        "interactive_cpu_ms_median": {k: statistics.median(m["interactive_cpu_ms"][k] for m in measured)
                                      for k in ("all", "renderer_main")},
        "ca2sis_model_bytes": bytes_["ca2sis"], "sean_model_bytes": bytes_["sean"],
        "download_on_load": download("on_load"), "download_comparison": download("comparison"),
        "comparison_ms_median": statistics.median(comparison), "comparison_ms_range": [min(comparison),
                                                                                      max(comparison)],
        "sean_decoder_ms_median": page_median("sean_decoder"), "mask_embedder_ms_median": page_median("mask_embedder"),
    }
    return {"machine": machine(threads=1), "chromium": measured[0]["chromium"], "onnxruntime_web": ort_about,
            "threads": 1, "rounds": rounds, "loadavg": {"before": [round(x, 2) for x in load_before],
                                                         "after": [round(x, 2) for x in os.getloadavg()]},
            "targets": TARGETS, "summary": summary, "rounds_measured": measured}


def report_markdown(result: dict[str, Any]) -> str:
    s, m, load, t = result["summary"], result["machine"], result["loadavg"], result["targets"]
    cpu = s["interactive_cpu_ms_median"]
    on_load, comparison = s["download_on_load"], s["download_comparison"]
    idle_floor = max(cpu["renderer_main"], cpu["all"] / 2)

    def verdict(value: float, key: str, unit: str = "ms", scale: float = 1.0) -> str:
        return f"≤ {t[key] / scale:.0f} {unit}: {'within' if value <= t[key] else '**over**'}"

    def timed(what: str, key: str) -> str:
        low, high = s[f"{key}_range"]
        median = s[f"{key}_median"]
        return f"| {what} | {median:.0f} ms | {low:.0f}–{high:.0f} ms | {verdict(median, key) if key in t else ''} |"

    return "\n".join([
        "# The explorer in headless Chromium",
        "",
        f"Machine: {m.get('cpu', m['processor'])}, {m['cpu_count']} cores, CPU flags {' '.join(m['cpu_flags'])}; "
        f"{result['chromium']} (headless), {result['onnxruntime_web']}, WebAssembly backend, "
        f"{result['threads']} thread. Load average (1, 5, 15 min) {load['before']} before, {load['after']} after.",
        "",
        f"{result['rounds']} round(s), each a fresh browser (no cache) loading the page from a local static server; "
        f"downloads counted by the browser (uncompressed, as the local server sends them), \"on load\" until "
        f"interactive and {GRACE_S} s after; decoder passes: 10 per round after the page's own first runs, then the "
        "comparison turned on with the page's button.",
        "",
        "| figure | median | range | target |",
        "|---|---:|---:|---|",
        timed("one CA²-SIS decoder pass (wall)", "decoder_ms"),
        f"| one CA²-SIS decoder pass (renderer CPU time) | {s['decoder_cpu_ms_median']:.0f} ms | | "
        f"{verdict(s['decoder_cpu_ms_median'], 'decoder_ms')} |",
        timed("page interactive after navigation (wall)", "interactive_ms"),
        f"| CPU time until interactive: the renderer's main thread | {cpu['renderer_main']:.0f} ms | | |",
        f"| CPU time until interactive: all of Chromium (WebAssembly compiled on other threads) | "
        f"{cpu['all']:.0f} ms | | |",
        f"| interactive on an idle 2-core machine, at least (max of the main thread, all ÷ 2) | {idle_floor:.0f} ms | "
        f"| ≤ {t['interactive_ms']} ms: "
        f"{'not ruled out (a floor, not a measurement)' if idle_floor <= t['interactive_ms'] else '**over**'} |",
        f"| model downloaded on load (ONNX graphs: CA²-SIS's only, the comparison off) | "
        f"{on_load['onnx'] / 1e6:.2f} MB | | {verdict(on_load['onnx'], 'model_bytes_on_load', 'MB', 1e6)} |",
        f"| everything downloaded on load: graphs, onnxruntime-web ({on_load['runtime'] / 1e6:.2f} MB), page, faces "
        f"and manifest ({on_load['other'] / 1e6:.2f} MB) | {on_load['total'] / 1e6:.2f} MB | | |",
        f"| downloaded when the comparison is turned on (the SEAN-style graphs) | {comparison['onnx'] / 1e6:.2f} MB | "
        f"| |",
        f"| model downloaded with the comparison on (both models' graphs) | "
        f"{(on_load['onnx'] + comparison['onnx']) / 1e6:.2f} MB | | |",
        timed("comparison turned on -> first SEAN-style face drawn (wall)", "comparison_ms"),
        f"| one SEAN decoder pass (wall, the page's own runs, first ones included) | "
        f"{s['sean_decoder_ms_median']:.0f} ms | | |",
        f"| one CA²-SIS mask-embedder pass (wall, the page's own runs, first ones included) | "
        f"{s['mask_embedder_ms_median']:.0f} ms | | |",
        "",
        "Wall times are what this run saw: with the load above on 2 cores the page's one thread gets a fraction of a "
        "core. The renderer's CPU time per pass is what the pass costs a core, about its wall time on an idle machine. "
        "Until interactive the main thread runs the page and onnxruntime-web (the first passes run V8's baseline "
        "WebAssembly code, slower than later ones) while other threads compile the 15 MB runtime, so an idle 2-core "
        "machine needs at least the larger of the main thread's time and half of all threads' time.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "explorer_browser"), help="results path without suffix")
    parser.add_argument("--screenshot", default=None, help="also save a full-page PNG of the page in use")
    args = parser.parse_args(argv)
    result = run(args.rounds, Path(args.screenshot) if args.screenshot else None)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(report_markdown(result))
    print(report_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
