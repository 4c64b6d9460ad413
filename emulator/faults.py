"""Fault injection: what should go wrong with an InvokeModel call, and the wire error for it.

Faults come from two places and are merged per call:
- the FaultPlan, a list of rules set in-process or through the control endpoint;
- markers in the prompt text, e.g. ``[[fault:throttle]]`` (see the package docstring).

A call resolves to a Decision: an extra delay, at most one failure, and optionally a body
that is written slowly. Rules may be limited to some models, to some retry attempts (from
boto3's ``amz-sdk-request: attempt=N`` header) and to a number of firings.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection
from dataclasses import asdict, dataclass

from emulator.models import BedrockError

FAULT_KINDS = (
    "throttle",
    "not_ready",
    "unavailable",
    "internal",
    "access_denied",
    "not_found",
    "quota",
    "model_timeout",
    "model_error",
    "filter",
    "filter_output",
    "inference_error",
    "latency",
    "slow_body",
)

# Failures answered with a Bedrock error before the body is validated, the way a front door
# refuses work (status, x-amzn-ErrorType, message as section 1.5 of the reference lists).
FRONT_DOOR_ERRORS: dict[str, tuple[int, str, str]] = {
    "throttle": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    "not_ready": (
        429,
        "ModelNotReadyException",
        "Model is not ready for inference. Wait and try your request again.",
    ),
    "unavailable": (
        503,
        "ServiceUnavailableException",
        "Bedrock is unable to process your request.",
    ),
    "internal": (
        500,
        "InternalServerException",
        "The server encountered an internal error while processing the request.",
    ),
    "access_denied": (
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    # What a Legacy model returns to an account that lost access, or any model after EOL.
    "not_found": (
        404,
        "ResourceNotFoundException",
        "This model version has reached the end of its life. Please refer to the AWS "
        "documentation for more details.",
    ),
    "quota": (
        400,
        "ServiceQuotaExceededException",
        "Your request exceeds the service quota for your account.",
    ),
}

# Failures the model itself produces, so they fire only for a valid request.
MODEL_ERRORS: dict[str, tuple[int, str, str]] = {
    "model_timeout": (
        408,
        "ModelTimeoutException",
        "Model has timed out in processing the request. Try your request again.",
    ),
    "model_error": (424, "ModelErrorException", "The model encountered an internal error."),
}

# The remaining failures, filter / filter_output / inference_error, are content-filter and
# inference outcomes whose wire form depends on the model family, so the server renders them
# (400 ValidationException for Nova/Titan, HTTP 200 for Stability).

DEFAULT_TIMING_S = 1.0  # latency / slow_body duration when none is given
_MARKER = re.compile(r"\[\[fault:([a-z_]+)(?:=([0-9]+(?:\.[0-9]+)?))?(?:@([0-9,]+))?\]\]")


def error_for(kind: str, resource_name: str) -> BedrockError:
    """The wire error of a front-door or model failure kind."""
    status, code, message = {**FRONT_DOOR_ERRORS, **MODEL_ERRORS}[kind]
    extra: dict[str, object] = {}
    if kind == "model_error":
        extra = {"originalStatusCode": 500, "resourceName": resource_name}
    return BedrockError(status, code, message, extra)


@dataclass
class FaultRule:
    kind: str  # one of FAULT_KINDS
    model_id: str | None = None  # None: every model
    latency_s: float = 0.0  # delay before the outcome; duration of the body for slow_body
    times: int | None = None  # firings left; None: unlimited
    attempts: frozenset[int] | None = None  # fire only on these attempt numbers

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["attempts"] = sorted(self.attempts) if self.attempts is not None else None
        return data


def make_rule(
    kind: str,
    model_id: str | None = None,
    latency_s: float | None = None,
    times: int | None = None,
    attempts: Collection[int] | None = None,
) -> FaultRule:
    """Build a rule, refusing values that would silently never fire.

    Without latency_s, `latency` and `slow_body` take DEFAULT_TIMING_S; other kinds none.
    """
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    if latency_s is None:
        latency_s = DEFAULT_TIMING_S if kind in ("latency", "slow_body") else 0.0
    if latency_s < 0:
        raise ValueError("latency_s must be >= 0")
    if times is not None and times < 1:
        raise ValueError("times must be >= 1, or null for unlimited")
    if attempts is not None and not all(a >= 1 for a in attempts):
        raise ValueError("attempts are numbered from 1")
    return FaultRule(
        kind=kind,
        model_id=model_id,
        latency_s=float(latency_s),
        times=times,
        attempts=frozenset(attempts) if attempts is not None else None,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def rule_from_json(data: object) -> FaultRule:
    """A rule from the control endpoint's JSON body (the same fields as FaultPlan.set)."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    unknown = set(data) - {"kind", "model_id", "latency_s", "times", "attempts"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    kind, model_id = data.get("kind"), data.get("model_id")
    latency_s, times, attempts = data.get("latency_s"), data.get("times"), data.get("attempts")
    if not isinstance(kind, str):
        raise ValueError(f"kind is required, one of: {', '.join(FAULT_KINDS)}")
    if model_id is not None and not isinstance(model_id, str):
        raise ValueError("model_id must be a string or null")
    if latency_s is not None and (
        isinstance(latency_s, bool) or not isinstance(latency_s, int | float)
    ):
        raise ValueError("latency_s must be a number or null")
    if times is not None and not _is_int(times):
        raise ValueError("times must be an integer or null")
    if attempts is not None and not (
        isinstance(attempts, list) and all(_is_int(a) for a in attempts)
    ):
        raise ValueError("attempts must be a list of integers or null")
    return make_rule(kind, model_id, latency_s, times, attempts)


def parse_markers(text: str) -> list[FaultRule]:
    """Rules from ``[[fault:KIND]]``, ``[[fault:KIND=SECONDS]]`` or ``[[fault:KIND@1,2]]``."""
    rules = []
    for kind, seconds, attempts in _MARKER.findall(text):
        try:
            rules.append(
                make_rule(
                    kind,
                    latency_s=float(seconds) if seconds else None,
                    attempts={int(a) for a in attempts.split(",") if a} if attempts else None,
                )
            )
        except ValueError as exc:
            raise BedrockError(400, "ValidationException", f"Bad emulator marker: {exc}") from exc
    return rules


@dataclass(frozen=True)
class Decision:
    """What happens to one call."""

    delay_s: float = 0.0
    failure: str | None = None  # any kind but latency and slow_body
    slow_body_s: float | None = None


class FaultPlan:
    """Thread-safe, ordered fault rules shared by all calls of one emulator."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def set(
        self,
        model_id: str | None = None,
        *,
        kind: str,
        latency_s: float | None = None,
        times: int | None = None,
        attempts: Collection[int] | None = None,
    ) -> FaultRule:
        """Add a rule, replacing any rule with the same model_id and kind."""
        return self.add(make_rule(kind, model_id, latency_s, times, attempts))

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules = [
                r for r in self._rules if (r.model_id, r.kind) != (rule.model_id, rule.kind)
            ]
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def decide(
        self, model_ids: Collection[str], attempt: int, markers: list[FaultRule]
    ) -> Decision:
        """Pick the faults for one call and use up their `times`.

        Every matching latency and slow_body rule applies; of the failures the first match
        wins (markers before plan rules, plan rules in the order they were set).
        """
        delay, failure, slow_body = 0.0, None, None
        with self._lock:
            for rule in [*markers, *self._rules]:
                if not _matches(rule, model_ids, attempt):
                    continue
                if rule.kind == "slow_body":
                    slow_body = max(slow_body or 0.0, rule.latency_s)
                elif rule.kind == "latency":
                    delay += rule.latency_s
                elif failure is None:
                    failure = rule.kind
                    delay += rule.latency_s
                else:
                    continue  # a failure already won; this rule keeps its firings
                if rule.times is not None:
                    rule.times -= 1
            self._rules = [r for r in self._rules if r.times is None or r.times > 0]
        return Decision(delay, failure, slow_body)


def _matches(rule: FaultRule, model_ids: Collection[str], attempt: int) -> bool:
    return (
        (rule.model_id is None or rule.model_id in model_ids)
        and (rule.attempts is None or attempt in rule.attempts)
        and (rule.times is None or rule.times > 0)
    )


_ATTEMPT = re.compile(r"attempt=(\d+)")


def attempt_number(header: str | None) -> int:
    """The retry attempt from boto3's ``amz-sdk-request: attempt=N; max=M`` (1 if absent)."""
    match = _ATTEMPT.search(header or "")
    return int(match.group(1)) if match else 1
