"""The terminal never shows a GIL holder that did hold the GIL as "0%" (issue 13 §3)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from dora_doctor.cli import app

REC = Path(__file__).parent / "fixtures" / "recordings"


def test_a_holder_below_half_a_percent_shows_as_under_one_percent() -> None:
    """nd.ddrec (real run): MainThread held the GIL in 0.2 % of the shutdown's samples."""
    result = CliRunner().invoke(
        app, ["report", str(REC / "nd.ddrec")], env={"NO_COLOR": "1", "COLUMNS": "160"}
    )
    assert result.exit_code == 0, result.output
    holders = re.findall(r"^│\s+(\S+%)\s+(\S+): ", result.output, re.M)
    assert ("<1%", "MainThread") in holders, result.output
    assert not any(share == "0%" for share, _thread in holders), holders
    assert "│      <1% │" in result.output  # the table's GIL column: held, if barely
