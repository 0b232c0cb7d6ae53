"""Serve the lecture app (``app/lecture.ipynb``) with Voilà: what ``make inspector`` runs.

    python scripts/serve_lecture.py                              # http://127.0.0.1:8866, this machine only
    python scripts/serve_lecture.py --host 0.0.0.0 [--token T]   # the room: a token is required (made if not given)

Every page that opens starts its own kernel (one model, its samples and the figures: see
``benchmarks/results/lecture_kernel_memory.md`` for its size). So the server

* listens on 127.0.0.1 unless told otherwise, and beyond it only with a token (Voilà's own): anyone who
  reaches the port could otherwise start kernels until the machine runs out of memory;
* culls kernels idle for ``--cull-idle`` seconds once their page is closed (the kernel manager's
  ``cull_idle_timeout``; a page still open keeps its kernel);
* writes exports only into ``--export-dir`` (the apps take a file name, never a path).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"localhost", "127.0.0.1", "::1"}
DENYLIST = "['@jupyter/nbgrader','@jupyter-notebook/lab-extension']"  # JupyterLab-only, they fail in Voilà


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def voila_command(host: str, port: int, token: str | None, cull_idle_s: int = 600) -> list[str]:
    """The Voilà command line; ``ValueError`` when a non-loopback host has no token."""
    if not is_loopback(host) and not token:
        raise ValueError(f"serving on {host} makes the app reachable from the network: give a token "
                         "(TOKEN=<secret>), or keep HOST=127.0.0.1")
    cmd = [sys.executable, "-m", "voila", str(ROOT / "app" / "lecture.ipynb"), "--no-browser", f"--port={port}",
           f"--Voila.ip={host}", "--template=ca2sis", f"--VoilaConfiguration.extension_denylist={DENYLIST}",
           f"--MappingKernelManager.cull_idle_timeout={cull_idle_s}",
           f"--MappingKernelManager.cull_interval={max(1, min(30, cull_idle_s // 2))}"]
    if token:
        cmd.append(f"--token={token}")
    # tracebacks name files of this machine: show them only to a viewer on the machine itself
    cmd.append(f"--show_tracebacks={is_loopback(host)}")
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8866)
    parser.add_argument("--token", default=os.environ.get("CA2SIS_TOKEN") or None,
                        help="Voilà's token; required beyond 127.0.0.1 (one is made and printed if not given)")
    parser.add_argument("--cull-idle", type=int, default=600, help="seconds before an idle, closed page's kernel ends")
    args = parser.parse_args(argv)
    token = args.token
    if not is_loopback(args.host) and not token:
        token = secrets.token_urlsafe(16)
    if not is_loopback(args.host):
        print(f"The app is reachable from the network. Students open http://{socket.gethostname()}:{args.port}/"
              f"?token={token} (anyone with this link can use the app and its exports folder).", flush=True)
    cmd = voila_command(args.host, args.port, token, args.cull_idle)
    os.execv(cmd[0], cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
