"""Execute a notebook with papermill and show its progress: one line per code cell.

``make run`` (``scripts/run_notebooks.py``) and the notebook tests both run notebooks through
``execute``. It is course tooling, not part of the installable library: papermill is an optional
extra (``notebooks``), so this module lives beside the scripts that use it. Two things differ from
a bare ``papermill.execute_notebook``:

* **Progress.** Papermill's own choices are a tqdm bar (unreadable in a log, and silent while a
  long cell runs) or ``log_output`` (every line every cell prints). ``ProgressEngine`` instead
  prints, as each code cell starts, ``cell k of n`` with the time elapsed and the cell's first
  line, so a long cell shows *which* cell is running and a busy machine does not look hung.
* **Transport.** The kernel talks to papermill over ZeroMQ. Over TCP, ipykernel warns at every
  start that traffic is unencrypted ("... susceptible to eavesdropping"); both ends are on this
  machine, and the warning's own advice is IPC transport, i.e. Unix-domain sockets whose files
  live in the notebook's working folder and are removed when the kernel exits. We use IPC where
  the platform has it (not on Windows), so the warning is not printed rather than hidden.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

import papermill
from papermill.engines import NBClientEngine, papermill_engines
from traitlets.config import Config

ENGINE_NAME = "ca2sis-progress"


def _first_line(source: str, width: int = 60) -> str:
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return text if len(text) <= width else text[: width - 1] + "…"


class CellProgress:
    """Prints ``<label> · cell k of n · 1 min 05 s · <first line>`` as each code cell starts."""

    def __init__(self, cells: list[Any], label: str, stream: TextIO | None = None) -> None:
        self.code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
        self.label, self.stream, self.started = label, stream or sys.stdout, time.monotonic()

    def start(self, cell: Any, index: int | None) -> None:
        if index not in self.code:
            return
        k, elapsed = self.code.index(index) + 1, time.monotonic() - self.started
        minutes, seconds = divmod(int(elapsed), 60)
        clock = f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
        print(f"    {self.label} · cell {k} of {len(self.code)} · {clock} · {_first_line(cell.source)}",
              file=self.stream, flush=True)


class ProgressEngine(NBClientEngine):
    """Papermill's nbclient engine, reporting each code cell through a ``CellProgress``."""

    stream: TextIO | None = None
    label: str = ""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        progress = CellProgress(nb_man.nb.cells, cls.label, cls.stream)
        cell_start = nb_man.cell_start

        def start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
            progress.start(cell, cell_index)
            return cell_start(cell, cell_index, **kw)

        nb_man.cell_start = start  # an instance attribute shadows the method for this run only
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


papermill_engines.register(ENGINE_NAME, ProgressEngine)


def kernel_config() -> Config:
    """IPC transport where the platform has Unix sockets (see the module docstring), else TCP."""
    return Config({"KernelManager": {"transport": "tcp" if sys.platform.startswith("win") else "ipc"}})


def execute(notebook: str | Path, output: str | Path, parameters: dict[str, Any], cwd: str | Path,
            timeout: int = 3600, progress: bool = True, stream: TextIO | None = None) -> Any:
    """Run ``notebook`` top to bottom with ``parameters``; write the executed copy to ``output``.

    ``progress``: one line per code cell on ``stream`` (stdout by default); ``False`` prints nothing.
    Raises papermill's ``PapermillExecutionError`` naming the failing cell.
    """
    ProgressEngine.label, ProgressEngine.stream = Path(notebook).stem[:2], stream
    return papermill.execute_notebook(
        str(notebook), str(output), parameters=parameters, cwd=str(cwd), kernel_name="python3",
        execution_timeout=timeout, progress_bar=False, engine_name=ENGINE_NAME if progress else None,
        config=kernel_config(),
    )


__all__ = ["CellProgress", "ProgressEngine", "kernel_config", "execute"]
