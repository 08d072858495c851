import subprocess
import sys

import pytest

from core.cli.main import build_parser

COMMANDS = [
    ["simulate"], ["fit"], ["ingest"], ["prep"], ["catalog"], ["train"], ["runs"], ["embed"],
    ["votes", "import"], ["votes", "export"], ["votes", "stats"], ["queue"], ["demo"], ["serve"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(cmd + ["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: resx " + " ".join(cmd))


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "core", "--help"], capture_output=True, text=True, check=True)
    assert "simulate" in out.stdout and "votes" in out.stdout
