"""What the command modules share: adding a subcommand and its WORKSPACE argument."""

from __future__ import annotations

import argparse
from typing import Callable


def add_command(sub: argparse._SubParsersAction, name: str, help: str, run: Callable[[argparse.Namespace], int],
                *, workspace: bool = True) -> argparse.ArgumentParser:
    """A subcommand ``name`` whose handler is ``run``; with a positional ``WORKSPACE`` unless ``workspace=False``."""
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(func=run)
    if workspace:
        parser.add_argument("workspace", metavar="WORKSPACE", help="the workspace folder")
    return parser
