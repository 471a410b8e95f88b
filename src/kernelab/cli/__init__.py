"""The ``kernelab`` command: train, evaluate and predict with CNNs from the shell, and port
PyTorch scripts.

``parsers.py`` declares each subcommand's options, ``handlers.py`` does what it says by calling
the library. A user error (missing file, bad spec, shape mismatch) prints one line and exits
with status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from ..data import DataFallbackWarning
from . import parsers

SUBCOMMANDS = (
    parsers.train_parser,
    parsers.evaluate_parser,
    parsers.predict_parser,
    parsers.summary_parser,
    parsers.export_parser,
    parsers.inspect_parser,
    parsers.filter_parser,
    parsers.explain_parser,
    parsers.studio_parser,
    parsers.study_parser,
    parsers.port_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``kernelab`` parser, with one subparser per subcommand, in ``--help``'s order."""
    parser = argparse.ArgumentParser(
        prog="kernelab",
        description="kernelab: train, inspect and explain convolutional networks, kernel by "
        "kernel. Start with `kernelab train`.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kernelab`` with ``argv`` (default: the process's); the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DataFallbackWarning)  # the data line already says so
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("kernelab: interrupted; the last checkpoint is kept", file=sys.stderr)
        return 130
    except Exception as error:  # one clear line for a user; the traceback with --debug
        if args.debug:
            raise
        print(f"kernelab {args.command}: error: {error}", file=sys.stderr)
        return 1
