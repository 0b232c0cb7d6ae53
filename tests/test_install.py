"""A non-editable install works outside the repository: the wheel carries the shipped toy models.

The wheel is built from this checkout and installed with ``--no-deps`` into a fresh virtual
environment that borrows the test environment's packages (torch and the rest) through a ``.pth``
path; the package itself comes from the wheel alone, and runs from a folder outside the clone.
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, ca2sis_lib
from ca2sis_lib.loading import load_model
from ca2sis_lib.evaluate import evaluate_toy
model = load_model("ca2sis_tiny_toy")  # shipped by name: from the installed package data, SHA-256 checked
print(json.dumps({"file": ca2sis_lib.__file__, "psnr": evaluate_toy(model, num_samples=8)["psnr"],
                  "noise": model.mapping.shared[0].weight.abs().sum().item()}))
"""


def copy_of_the_sources(dest: Path) -> Path:
    """The files git would commit (tracked, or new and not ignored): no stale build/ folder can leak in."""
    listing = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    for name in filter(None, listing.split("\0")):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.mark.slow
def test_wheel_installs_and_loads_the_shipped_models(tmp_path):
    wheels = tmp_path / "wheels"
    source = copy_of_the_sources(tmp_path / "source")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(source)], check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("ca2sis_lib-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # torch & co. from the test environment (a .pth path line: its own .pth files, such as the
    # editable install's finder, are not run), the package from the wheel only
    Path(purelib, "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = subprocess.run([str(python), "-c", SCRIPT], cwd=outside, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["file"]).is_relative_to(venv), report["file"]  # not the checkout
    assert report["psnr"] > 20 and report["noise"] > 0  # trained weights, mapping network included
