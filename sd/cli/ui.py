"""`python -m sd ui`: the web UI (Gradio) over the GIF driver, on http://127.0.0.1:7860 by default.

    python -m sd ui                      # only this machine can open it
    python -m sd ui --host 0.0.0.0 --port 8000   # reachable from the network: you choose to expose it

No share link is made, analytics are off and the page loads nothing from the internet.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ui", help="web UI for animations (Gradio)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--out-dir", default="outputs/ui", help="where generated files go (default outputs/ui)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sd.ui.app import launch

    launch(args.host, args.port, args.out_dir)
    return 0
