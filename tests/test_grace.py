"""Grace arithmetic: percentiles, censoring, margin and rounding."""

from __future__ import annotations

import pytest

from dora_doctor.analysis.grace import StopTime, node_stats, percentile, round_up_seconds, suggest


def test_nearest_rank_percentile_is_always_a_measured_value() -> None:
    values = [0.5, 0.1, 0.3, 0.2, 0.4]
    assert percentile(values, 50) == 0.3
    assert percentile(values, 95) == 0.5
    assert percentile(values, 99) == 0.5
    assert percentile([7.0], 99) == 7.0
    assert percentile(list(range(1, 101)), 99) == 99


def test_censored_runs_are_kept_apart_never_averaged() -> None:
    stats = node_stats("saver", [StopTime(3.1), StopTime(3.0), StopTime(60.0, censored=True)])
    assert stats.measured == [3.1, 3.0]
    assert stats.censored == [60.0]
    assert stats.max == 3.1 and stats.p50 == 3.0


def test_suggestion_is_max_times_margin_rounded_up_for_few_runs() -> None:
    stats = [
        node_stats("saver", [StopTime(3.1), StopTime(3.05), StopTime(3.2)]),
        node_stats("talker", [StopTime(0.1)] * 3),
    ]
    result = suggest(stats, "robot", margin=1.5)
    assert result.grace_s == 5.0  # 3.2 × 1.5 = 4.8 → 5
    assert result.command == "dora stop robot --grace-duration 5s"
    assert result.would_help is True
    assert "saver" in result.reason and "max" in result.reason


def test_p99_is_used_from_twenty_runs() -> None:
    times = [StopTime(1.0)] * 19 + [StopTime(1.1)] * 80 + [StopTime(9.0)]
    result = suggest([node_stats("n", times)], "df", margin=1.2)
    assert result.grace_s == 2.0  # p99 = 1.1 × 1.2 = 1.32 → 2; the single 9 s outlier is p100
    assert "p99" in result.reason


def test_a_node_that_hit_the_ceiling_withholds_the_number() -> None:
    stats = [node_stats("slow", [StopTime(4.0), StopTime(60.0, censored=True)])]
    result = suggest(stats, "df")
    assert result.grace_s is None and result.would_help is False
    assert "≥ 60.00 s" in result.reason and "--ceiling" in result.reason


def test_blocking_causes_say_no_grace_helps() -> None:
    stats = [
        node_stats("crunch", [StopTime(60.0, True, "gil-contention")]),
        node_stats("saver", [StopTime(3.0, False, "none")]),
    ]
    result = suggest(stats, "df")
    assert result.would_help is False
    assert "crunch (gil-contention)" in result.reason
    assert "more grace only hides it" in result.reason
    assert result.grace_s == 5.0  # 3.0 × 1.5 → 5, for saver, once crunch is fixed
    assert "once fixed" in result.reason


def test_only_blocked_nodes_give_no_number() -> None:
    result = suggest([node_stats("deaf", [StopTime(2.0, True, "stuck")])], "df")
    assert result.grace_s is None and result.would_help is False and result.command == ""


@pytest.mark.parametrize(("seconds", "rounded"), [(0.2, 1.0), (1.0, 1.0), (1.01, 2.0), (4.8, 5.0)])
def test_round_up_to_whole_seconds(seconds: float, rounded: float) -> None:
    assert round_up_seconds(seconds) == rounded


def test_a_node_stopped_before_it_started_is_left_out_not_measured_again() -> None:
    """slow_startup / victim: a stop before Node() says nothing about the grace; it is no
    reason for "measure with tune-grace", and the others still get their number."""
    alone = suggest([node_stats("model", [StopTime(2.3, True, "starting")])], "df")
    assert alone.grace_s is None and alone.would_help is False
    assert "model (starting) had not started when stopped" in alone.reason
    assert "stop after start-up" in alone.reason and "tune-grace" not in alone.reason
    stats = [
        node_stats("never_ready", [StopTime(2.3, True, "starting")]),
        node_stats("waiter", [StopTime(2.3, True, "waiting-for-peer")]),
        node_stats("saver", [StopTime(3.0, False, "none")]),
    ]
    result = suggest(stats, "df")
    assert result.grace_s == 5.0 and result.would_help is True
    assert "never_ready (starting), waiter (waiting-for-peer)" in result.reason
    assert "their stops say nothing" in result.reason and "for the other nodes" in result.reason
    # once it started in another run, its measured stops count again
    mixed = suggest([node_stats("model", [StopTime(2.3, True, "starting"), StopTime(0.4)])], "df")
    assert "had not started" not in mixed.reason
