"""Fault rules, prompt markers and how a call's faults are decided."""

from __future__ import annotations

import pytest

from emulator.faults import (
    DEFAULT_TIMING_S,
    Decision,
    FaultPlan,
    attempt_number,
    error_for,
    make_rule,
    parse_markers,
    rule_from_json,
)
from emulator.models import BedrockError
from tests.emulator.fault_table import ERROR_FAULTS

NOVA = {"amazon.nova-canvas-v1:0"}
TITAN = {"amazon.titan-image-generator-v1"}


def test_an_empty_plan_does_nothing() -> None:
    assert FaultPlan().decide(NOVA, 1, []) == Decision()


def test_times_limits_the_firings() -> None:
    plan = FaultPlan()
    plan.set(kind="throttle", times=2)
    assert [plan.decide(NOVA, 1, []).failure for _ in range(3)] == ["throttle", "throttle", None]
    assert plan.rules() == []


def test_rules_match_models_and_attempts() -> None:
    plan = FaultPlan()
    plan.set("amazon.nova-canvas-v1:0", kind="internal", attempts=[1, 2])
    assert plan.decide(TITAN, 1, []).failure is None
    assert plan.decide(NOVA, 1, []).failure == "internal"
    assert plan.decide(NOVA, 3, []).failure is None


def test_latency_adds_up_and_the_first_failure_wins() -> None:
    plan = FaultPlan()
    plan.set(kind="latency", latency_s=0.5)
    plan.set(kind="throttle", latency_s=0.25, times=1)
    plan.set(kind="internal", times=1)
    plan.set(kind="slow_body", latency_s=2)
    assert plan.decide(NOVA, 1, []) == Decision(0.75, "throttle", 2.0)
    # The internal rule did not fire, so it keeps its one firing for the next call.
    assert plan.decide(NOVA, 1, []).failure == "internal"
    assert plan.decide(NOVA, 1, []).failure is None


def test_markers_come_before_plan_rules() -> None:
    plan = FaultPlan()
    plan.set(kind="internal", times=1)
    assert plan.decide(NOVA, 1, parse_markers("[[fault:filter]]")).failure == "filter"
    assert plan.decide(NOVA, 1, []).failure == "internal"


def test_setting_a_rule_replaces_the_same_model_and_kind() -> None:
    plan = FaultPlan()
    plan.set(kind="latency", latency_s=3)
    plan.set(kind="latency", latency_s=1)
    plan.set("amazon.nova-canvas-v1:0", kind="latency", latency_s=2)
    assert [rule.latency_s for rule in plan.rules()] == [1.0, 2.0]
    plan.clear()
    assert plan.rules() == []


def test_parse_markers() -> None:
    rules = parse_markers("a [[fault:latency=2.5]] b [[fault:throttle@1,3]] [[fault:slow_body]]")
    assert [(r.kind, r.latency_s, r.attempts) for r in rules] == [
        ("latency", 2.5, None),
        ("throttle", 0.0, frozenset({1, 3})),
        ("slow_body", DEFAULT_TIMING_S, None),
    ]
    assert parse_markers("no markers [fault:throttle] [[Fault:throttle]]") == []


def test_an_unknown_marker_is_a_validation_error() -> None:
    with pytest.raises(BedrockError, match="unknown fault kind 'bogus'") as caught:
        parse_markers("[[fault:bogus]]")
    assert caught.value.code == "ValidationException"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a JSON object"),
        ({}, "kind is required"),
        ({"kind": "throttle", "model": "x"}, "unknown fields: model"),
        ({"kind": "explode"}, "unknown fault kind"),
        ({"kind": "latency", "latency_s": "1"}, "latency_s must be a number"),
        ({"kind": "latency", "latency_s": -1}, "latency_s must be >= 0"),
        ({"kind": "throttle", "times": 0}, "times must be >= 1"),
        ({"kind": "throttle", "times": 1.5}, "times must be an integer"),
        ({"kind": "throttle", "attempts": 1}, "attempts must be a list"),
        ({"kind": "throttle", "attempts": [0]}, "attempts are numbered from 1"),
        ({"kind": "throttle", "model_id": 5}, "model_id must be a string"),
    ],
)
def test_rule_from_json_refuses_bad_rules(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rule_from_json(data)


def test_rule_json_round_trip() -> None:
    rule = rule_from_json({"kind": "throttle", "model_id": "m", "times": 2, "attempts": [2, 1]})
    assert rule == make_rule("throttle", "m", 0.0, 2, [1, 2])
    assert rule_from_json(rule.to_json()) == rule


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    ERROR_FAULTS,
)
def test_wire_errors(kind: str, status: int, code: str) -> None:
    error = error_for(kind, "amazon.nova-canvas-v1:0")
    assert (error.status, error.code) == (status, code)
    assert error.message


def test_attempt_number() -> None:
    assert attempt_number("attempt=3; max=5") == 3
    assert attempt_number(None) == 1
