"""The `resx` command line."""

from core.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
