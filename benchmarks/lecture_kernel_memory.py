"""How much memory one open page of the lecture app holds: its kernel, after the app is built and used.

    python benchmarks/lecture_kernel_memory.py [--pages 3]   # -> benchmarks/results/lecture_kernel_memory.{json,md}

Voilà starts one kernel per page that opens (``make inspector``). This starts kernels the way Voilà
does (jupyter_client, the ``python3`` kernel), runs the app notebook's code in each (the shipped toy
model on toy faces), draws one inspector view per layer and one edit, and reads each kernel's
resident memory (RSS, and USS: memory no other process shares) with psutil. From the USS it says how
many pages a machine of this memory can hold, leaving 2 GiB for the system and the server.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from pathlib import Path

import nbformat
import psutil
from jupyter_client.manager import start_new_kernel

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
USE_THE_APP = """
app.inspector.apply(layer=app.inspector.inspector.recording.layer_names[-1])
app.editor.apply(operation="style: global")
"""


def cpu_flags() -> str:
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    return " ".join(f for f in flags.split() if f.startswith(("avx", "amx")) or f == "fma")


def measure_page(code: str, export_dir: Path) -> dict[str, float]:
    env = dict(os.environ, CA2SIS_EXPORT_DIR=str(export_dir), OMP_NUM_THREADS="1")
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        for source in (code.replace("build_lecture_app(", "app = build_lecture_app(", 1), USE_THE_APP):
            reply = client.execute_interactive(source, timeout=600)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"the app failed in the kernel: {reply['content'].get('evalue')}")
        info = psutil.Process(manager.provisioner.process.pid).memory_full_info()
        return {"rss_mib": info.rss / 2**20, "uss_mib": info.uss / 2**20}
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=3, help="kernels measured, one after another")
    args = parser.parse_args()
    notebook = nbformat.read(ROOT / "app" / "lecture.ipynb", as_version=4)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    pages = [measure_page(code, Path("/tmp/ca2sis-lecture-bench")) for _ in range(args.pages)]
    uss = max(p["uss_mib"] for p in pages)
    total = psutil.virtual_memory().total / 2**30
    result = {
        "pages": pages, "uss_mib_max": round(uss, 1), "rss_mib_max": round(max(p["rss_mib"] for p in pages), 1),
        "machine": {"memory_gib": round(total, 1), "cpu": platform.processor() or platform.machine(),
                    "cpu_flags": cpu_flags(), "load_average": os.getloadavg(),
                    "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                          text=True).stdout.strip()},
        "pages_per_machine": {f"{gib} GiB": int((gib - 2) * 1024 // uss) for gib in (8, 16, 24, 32, 64)},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lecture_kernel_memory.json").write_text(json.dumps(result, indent=1))
    load = ", ".join(f"{x:.1f}" for x in result["machine"]["load_average"])
    rows = "\n".join(f"| {gib} | {n} |" for gib, n in result["pages_per_machine"].items())
    (RESULTS / "lecture_kernel_memory.md").write_text(
        f"# One page of the lecture app: its kernel's memory\n\n`python benchmarks/lecture_kernel_memory.py` at "
        f"{result['machine']['git']}: {args.pages} kernels, each running app/lecture.ipynb (shipped toy model, toy "
        f"faces) and drawing one inspector view and one edit. Largest RSS {result['rss_mib_max']} MiB, largest USS "
        f"(memory no other process shares) **{result['uss_mib_max']} MiB**. CPU flags: "
        f"{result['machine']['cpu_flags']}; load average {load}.\n\n"
        f"Open pages a machine holds at that size, 2 GiB left for the system and the server:\n\n"
        f"| memory | open pages |\n|---|---:|\n{rows}\n")
    print((RESULTS / "lecture_kernel_memory.md").read_text())


if __name__ == "__main__":
    main()
