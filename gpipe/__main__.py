"""``python -m gpipe [command]``: the demo (default) and other commands.

Each command lives in a module with ``add_arguments(parser)`` and
``run(args) -> int``; it imports what it needs inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional

# command name -> (module, one-line help)
COMMANDS = {
    "demo": ("gpipe._demo", "stream bytes between two greenlets, then two threads (default)"),
    "serve": ("gpipe._serve", "an HTTP server streaming bodies through pipes"),
    "bench": ("gpipe._bench", "gpipe against its peers: throughput, goal ratios, memory"),
}


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m gpipe", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (module, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(module=module)
        importlib.import_module(module).add_arguments(command)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["demo", *argv]
    args = parser.parse_args(argv)
    return int(importlib.import_module(args.module).run(args))


if __name__ == "__main__":
    sys.exit(main())
