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
    editable = [r for r in pip_section if r.startswith("-e")]
    assert editable, "environment.yml should install this package"
    extras = re.findall(r"\[([^\]]*)\]", editable[0])
    extras = {e.strip() for group in extras for e in group.split(",")}
    assert extras <= set(project["optional-dependencies"]), f"environment.yml names unknown extras {extras}"


def test_runtime_dependencies_leave_out_the_tools():
    """Colab installs only the library's dependencies: no JupyterLab, papermill, test or site tools."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    tools = {_name(r) for extra in project["optional-dependencies"].values() for r in extra}
    assert not runtime & tools, f"in both the runtime dependencies and an extra: {runtime & tools}"
    assert {"jupyterlab", "papermill", "pytest", "sphinx", "voila"} <= tools
    assert {"notebooks", "course", "test"} <= set(project["optional-dependencies"])


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


def test_runtime_ranges_admit_colabs_versions_and_python():
    """Colab's runtime (tests/colab_runtime/, Google's published list) satisfies every runtime dependency it has,
    so the first cell never needs to change one; requires-python admits Colab's Python, and the classifiers
    name the two Pythons the tests run on: this one and Colab's (the emulation's)."""
    import sys

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    colab = dict(line.split("==", 1) for line in (ROOT / "tests" / "colab_runtime" / "pip-freeze.gpu.txt")
                 .read_text().splitlines() if "==" in line and not line.startswith("#"))
    colab = {_name(name): Version(version) for name, version in colab.items()}
    for dependency in map(Requirement, project["dependencies"]):
        if _name(dependency.name) in colab:
            assert dependency.specifier.contains(colab[_name(dependency.name)], prereleases=True), (
                f"{dependency} refuses Colab's {dependency.name} {colab[_name(dependency.name)]}: the first cell "
                "would have to change it")
    assert str(colab["ipywidgets"]).startswith("7.") and str(colab["torch"]).startswith("2.11")  # what this guards
    os_info = (ROOT / "tests" / "colab_runtime" / "os-info-gpu.txt").read_text()
    colab_python = re.search(r"^Python (\d+\.\d+)", os_info, re.M)[1]
    assert Version(f"{colab_python}.0") in SpecifierSet(project["requires-python"])
    tested = {f"{sys.version_info.major}.{sys.version_info.minor}", colab_python}
    classified = {c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if re.search(r"Python :: 3\.\d+$", c)}
    assert classified == tested, f"the classifiers name {classified}; the tests run on {tested}"


COURSE_TOOLS = {"papermill", "nbformat", "nbclient", "nbconvert", "nbgrader", "sphinx", "myst_nb", "voila",
                "jupyterlab", "pytest", "playwright", "hypothesis", "ruff"}


def test_the_package_imports_no_course_tool():
    """`pip install ca2sis_lib` (Colab) brings only the runtime dependencies, so no module of the package may
    import a tool of the extras: course tooling (the papermill runner, the site, the student versions) lives
    in scripts/."""
    import ast

    found = []
    for path in sorted((ROOT / "ca2sis_lib").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in COURSE_TOOLS]
    assert not found, f"the installable package imports course tools: {found}"
