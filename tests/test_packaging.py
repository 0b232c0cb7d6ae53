"""Set-up files agree with each other: environment.yml names the runtime dependencies of pyproject."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    from_env = {r for r in pip_section if not r.startswith("-e")}
    assert {_name(r) for r in from_env} == {_name(r) for r in project["dependencies"]}
    assert from_env == set(project["dependencies"]), "version ranges differ between the two files"
    assert any(r.startswith("-e") for r in pip_section), "environment.yml should install this package"


def test_torch_ranges_admit_the_pinned_pair():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(d for d in deps if _name(d) == "torch")
    vision_req = next(d for d in deps if _name(d) == "torchvision")
    assert "<" not in torch_req and "<" not in vision_req, "keep upper bounds off: Colab brings its own torch"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make run" in readme
    assert "\nmake test\n" in ci
    assert "set -euo pipefail" in ci
