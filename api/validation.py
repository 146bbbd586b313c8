"""Turn request bodies into commands, or into a 422 whose details name each bad field."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from api.errors import Invalid
from api.service import fingerprint
from statemachine import KickoffRun, RecordResults

_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_METRIC_NAME = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as HTTP headers carry
MAX_TEXT = 1024
MAX_METRICS = 200
ID_RULE = "1 to 128 characters of letters, digits and ._:-"

_KICKOFF_FIELDS = {"run_id", "client_id", "actor_id", "task_id", "input", "requested_by"}
_RESULTS_FIELDS = {"metrics", "details"}


def find_nul(value: Any, path: str = "body") -> str | None:
    """The path of the first string (key or value) holding a NUL character, which jsonb refuses."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return f"{path}.<key>"
            found = find_nul(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = find_nul(item, f"{path}[{index}]")
            if found:
                return found
    return None


def may_hold_nul(raw: bytes) -> bool:
    """Whether JSON text can hold a NUL character: JSON writes it only as the escape \\u0000
    (a raw NUL byte is not valid JSON), so without that text the walk of `find_nul` is moot."""
    return b"\\u0000" in raw


def idempotency_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise Invalid(
            "the Idempotency-Key header is not valid",
            details={"Idempotency-Key": "1 to 255 visible ASCII characters"},
        )
    return key


def valid_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def _object_body(body: Any, allowed: set[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The body as an object, and the problems found so far (unknown fields, NUL characters)."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", details={"body": "a JSON object"})
    problems = {name: "unknown field" for name in body if name not in allowed}
    nul = find_nul(body)
    if nul:
        problems[nul] = "contains a NUL character"
    return body, problems


def _required_id(body: dict[str, Any], name: str, problems: dict[str, str]) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not valid_id(value):
        problems[name] = f"required, {ID_RULE}"
        return ""
    return value


def _optional_text(body: dict[str, Any], name: str, problems: dict[str, str]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_TEXT:
        problems[name] = f"a string of 1 to {MAX_TEXT} characters, or null"
        return None
    return value


def parse_kickoff(body: Any, headers: Mapping[str, str]) -> KickoffRun:
    """`POST /runs` body → KickoffRun; the request is named by Idempotency-Key or its body."""
    fields, problems = _object_body(body, _KICKOFF_FIELDS)
    run_id = _required_id(fields, "run_id", problems)
    client_id = _required_id(fields, "client_id", problems)
    actor_id = _optional_text(fields, "actor_id", problems)
    task_id = _optional_text(fields, "task_id", problems)
    requested_by = _optional_text(fields, "requested_by", problems)
    run_input = fields.get("input")
    if run_input is None:
        run_input = {}
    elif not isinstance(run_input, dict):
        problems["input"] = "a JSON object, or null"
    key = idempotency_key(headers)
    if problems:
        raise Invalid("the kickoff request is not valid", details=problems)
    received = {
        "run_id": run_id,
        "client_id": client_id,
        "actor_id": actor_id,
        "task_id": task_id,
        "input": run_input,
        "requested_by": requested_by,
    }
    request_key = f"key:{key}" if key else f"body:{fingerprint(received)}"
    return KickoffRun(
        run_id=run_id,
        client_id=client_id,
        actor_id=actor_id,
        task_id=task_id,
        input=run_input,
        requested_by=requested_by,
        request_key=request_key,
    )


def _metric(name: str, value: Any, problems: dict[str, str]) -> float:
    if not _METRIC_NAME.fullmatch(name):
        problems[f"metrics.{name}"] = f"metric names are {ID_RULE}"
    elif isinstance(value, bool) or not isinstance(value, int | float):
        problems[f"metrics.{name}"] = "a non-negative number"
    elif not math.isfinite(value) or value < 0 or abs(value) > 2**53:
        problems[f"metrics.{name}"] = "a non-negative finite number up to 2^53"
    else:
        return float(value)
    return 0.0


def parse_results(run_id: str, body: Any, headers: Mapping[str, str]) -> RecordResults:
    """`POST /runs/{run_id}/results` body → RecordResults."""
    if not valid_id(run_id):
        raise Invalid("the run id in the path is not valid", details={"run_id": ID_RULE})
    fields, problems = _object_body(body, _RESULTS_FIELDS)
    metrics = fields.get("metrics")
    parsed: dict[str, float] = {}
    if not isinstance(metrics, dict) or not 1 <= len(metrics) <= MAX_METRICS:
        problems["metrics"] = f"required, an object of 1 to {MAX_METRICS} name → number"
    else:
        parsed = {name: _metric(name, value, problems) for name, value in metrics.items()}
    details = fields.get("details")
    if details is not None and not isinstance(details, dict):
        problems["details"] = "a JSON object, or null"
    key = idempotency_key(headers)
    if problems:
        raise Invalid("the results report is not valid", details=problems)
    received = {"metrics": metrics, "details": details}
    request_key = f"key:{key}" if key else f"body:{fingerprint(received)}"
    return RecordResults(
        run_id=run_id,
        metrics=tuple(sorted(parsed.items())),
        details=details,
        request_key=request_key,
        received=received,
    )
