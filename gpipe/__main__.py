"""``python -m gpipe [command]``: the demo (default), a server, the benchmark.

Each command lives in a module with ``add_arguments(parser)`` and
``run(args) -> int``; it imports what it needs inside ``run``, so that
``--help`` and argument errors cost no gevent import. A command reports
an error with ``args.fail(message)``, its parser's ``error``: every error
of every command has the same one-line form and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
from typing import Any, NoReturn, Optional

DESCRIPTION = """\
gpipe: Go's io.Pipe for gevent. Run without a command, or with "demo", it
streams bytes through a pipe between two greenlets, then between two OS
threads, and prints the throughput.
"""

EPILOG = """\
"python -m gpipe COMMAND --help" describes each command's options.
Wrong arguments and errors such as a busy port are reported on one line,
with exit status 2. "python -m gpipe --version" says which gpipe, gevent
and Python run.
"""

# command name -> (module, one-line help)
COMMANDS = {
    "demo": ("gpipe._demo", "stream bytes between two greenlets, then two threads (default)"),
    "serve": (
        "gpipe._serve",
        "an HTTP server that streams uploads and downloads through pipes",
    ),
    "bench": (
        "gpipe._bench.command",
        "measure gpipe against os.pipe, gevent's Channel, queue.Queue and a memory copy",
    ),
}


class Parser(argparse.ArgumentParser):
    """An argument parser that reports a wrong argument on one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def version_text() -> str:
    """gpipe's version and build, gevent's version, Python's."""
    import gpipe

    # COMPILED: the core was built as an extension module.
    build = "compiled" if getattr(gpipe, "COMPILED", False) else "pure Python"
    try:
        import gevent
    except ImportError:
        gevent_version = "not installed"
    else:
        gevent_version = gevent.__version__
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"gpipe {gpipe.__version__} ({build}), gevent {gevent_version}, {python}"


class VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` and exit (imports only then)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(version_text())
        parser.exit(0)


def main(argv: Optional[list[str]] = None) -> int:
    """Parse *argv* (``sys.argv[1:]``), run the command; its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    parser = Parser(
        prog="python -m gpipe",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action=VersionAction, help="print the versions of gpipe, gevent and Python"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands = {}
    for name, (module, help_text) in COMMANDS.items():
        command = commands[name] = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(module=module, fail=command.error)
        importlib.import_module(module).add_arguments(command)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["demo", *argv]
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command they were given to
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return int(importlib.import_module(args.module).run(args))


if __name__ == "__main__":
    sys.exit(main())
