"""Install this repository on Colab without changing anything Colab already has.

Every notebook's first cell clones the repository and calls :func:`install`. Colab's runtime comes
with hundreds of packages (torch, numpy, ipywidgets 7.7.1, …) whose versions its front end and
its other libraries rely on. A plain ``pip install -e`` would upgrade whatever our requirements
allow it to (it once replaced ipywidgets 7.7.1 with 8.x, and Colab's front end cannot draw
ipywidgets 8 widgets), and pip does that without a word. So :func:`install`

1. writes a pip *constraints* file that pins every distribution already installed to its version
   (``name==version``): pip may add what is missing but may not change what is there. The build
   tools (pip, setuptools, wheel) are left out: pip applies constraints to the isolated environment
   it builds the package in too, and Colab's setuptools 75 is older than the one pyproject.toml's
   build needs (the emulation found this); pip does not touch the runtime's copies of them;
2. installs the repository (editable) under those constraints;
3. says in one line what it added, and checks that nothing present changed version.

Running it again is a no-op: once the repository is installed from ``target``, it returns at once.
This module imports only the standard library, because it runs before our dependencies exist.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from importlib import metadata

PACKAGE = "ca2sis_lib"
BUILD_TOOLS = {"pip", "setuptools", "wheel"}  # pinned, they would also pin the isolated build (see above)
RESTART_HINT = ("Fix: Runtime > Restart session and run this cell again; if it fails again, report this output "
                "as an issue of the repository.")


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``Jupyter_Core`` and ``jupyter-core`` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """{canonical name: version} of every distribution this Python sees (the first one on the path wins)."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name, version = dist.metadata["Name"], dist.version
        if name and version and canonical(name) not in found:
            found[canonical(name)] = version
    return found


def constraints(present: dict[str, str]) -> str:
    """One ``name==version`` line per present distribution but this package (to be installed) and the build tools."""
    skip = {canonical(PACKAGE), *BUILD_TOOLS}
    return "".join(f"{name}=={version}\n" for name, version in sorted(present.items()) if name not in skip)


def installed_from(target: str) -> bool:
    """True when this package is installed, editable, from the folder ``target``. (The clone's own
    ``ca2sis_lib.egg-info``, which the editable build leaves there, is on the path too: it has no
    ``direct_url.json`` and is passed over.)"""
    for dist in metadata.distributions(name=PACKAGE):
        direct_url = dist.read_text("direct_url.json")
        if direct_url and json.loads(direct_url).get("url", "").removeprefix("file://") == os.path.abspath(target):
            return True
    return False


def describe(added: dict[str, str], version: str) -> str:
    """'ca2sis_lib 0.1.0 and what Colab lacked: torchmetrics 1.8.2, …' for the one line the set-up prints."""
    others = ", ".join(f"{name} {v}" for name, v in sorted(added.items()) if name != canonical(PACKAGE))
    return f"{PACKAGE} {version}" + (f" and what Colab lacked: {others}" if others else " (Colab had the rest)")


def install(target: str) -> dict[str, str]:
    """Install the repository at ``target`` keeping every present package; return what was added."""
    if installed_from(target):
        print(f"ca2sis set-up: {PACKAGE} is already installed from {target}; nothing to do.")
        return {}
    before = installed()
    with tempfile.NamedTemporaryFile("w", suffix="-colab-constraints.txt", delete=False) as handle:
        handle.write(constraints(before))
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c", handle.name,
           "-e", target]
    done = subprocess.run(cmd, capture_output=True, text=True)
    os.unlink(handle.name)
    if done.returncode != 0:
        conflict = "ResolutionImpossible" in done.stderr or "conflict" in done.stderr.lower()
        why = (" because it would have to change a package Colab already has (the constraints keep them)"
               if conflict else "")
        raise RuntimeError(f"pip could not install {target}{why}; its message is below. {RESTART_HINT}\n\n"
                           f"$ {' '.join(cmd)}\n{done.stdout[-1500:]}{done.stderr[-2500:]}")
    after = installed()
    changed = {name: (before[name], after[name]) for name in before
               if name != canonical(PACKAGE) and after.get(name, before[name]) != before[name]}
    if changed:  # the constraints forbid this; if pip did it anyway, say so rather than go on quietly
        listed = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in sorted(changed.items()))
        raise RuntimeError(f"installing {target} changed packages Colab already had: {listed}. {RESTART_HINT}")
    added = {name: version for name, version in after.items() if name not in before}
    print(f"ca2sis set-up: installed {describe(added, metadata.version(PACKAGE))}; nothing Colab had was changed.")
    return added
