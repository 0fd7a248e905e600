from __future__ import annotations

import pytest

from dora_doctor.errors import DoctorError
from dora_doctor.units import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2s", 2.0),
        ("500ms", 0.5),
        ("1m", 60.0),
        ("2", 2.0),
        ("0.5", 0.5),
        (" 1.5s ", 1.5),
        ("1h", 3600.0),
    ],
)
def test_dora_forms_and_plain_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "fast",
        "-1",
        "-1s",
        "2 parsecs",
        "0",
        "0ms",
        "1e3",
        "nan",
        "NaN",
        "inf",
        "infinity",
        "\u0663s",  # Arabic-Indic three: float() reads it, dora does not
        "\uff13s",  # fullwidth three
        "\u0663",
        "9" * 400,  # would be float('inf')
        "9" * 400 + "s",
        "1" + "0" * 30 + "ms",
        "9999999h",  # finite, and longer than any watch
        "2s\n",
        "2\u2003s",  # an em space is not the space dora takes
    ],
)
def test_bad_durations_say_what_to_write(text: str) -> None:
    with pytest.raises(DoctorError) as err:
        parse_duration(text, "--grace")
    assert "--grace" in str(err.value) and err.value.exit_code == 2


def test_format_round_trips_through_dora_syntax() -> None:
    assert format_duration(3.0) == "3s"
    assert format_duration(2.5) == "2500ms"
    assert parse_duration(format_duration(7.25)) == pytest.approx(7.25)


def test_the_longest_duration_is_accepted_and_one_more_is_not() -> None:
    assert parse_duration("8784h") == 366 * 24 * 3600
    with pytest.raises(DoctorError, match="too long"):
        parse_duration("8785h")


def test_an_absurd_duration_is_shown_cut_short() -> None:
    with pytest.raises(DoctorError) as err:
        parse_duration("9" * 400, "--duration")
    assert len(str(err.value)) < 150
