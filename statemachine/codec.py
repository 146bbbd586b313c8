"""Events to and from the store's (type, data) pairs: JSON-ready dicts, the id kept apart.

The type name is the class name (STYLE 2.8: it never changes once written). Times are ISO 8601
strings with their zone, enums their values, metrics an object of name → number. `decode` is
on the projection rebuild's hot path, so each type's field converters are worked out once, here.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from statemachine.errors import UndecodableEvent, UnknownEventType
from statemachine.events import EVENT_TYPES, Event, RejectionReason
from statemachine.states import RunStatus

_Convert = Callable[[Any], Any]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _from_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _value(member: RunStatus | RejectionReason | None) -> str | None:
    return None if member is None else member.value


def _status(text: str | None) -> RunStatus | None:
    return None if text is None else RunStatus(text)


def _metrics_to_json(metrics: tuple[tuple[str, float], ...]) -> dict[str, float]:
    return dict(metrics)


def _metrics_from_json(metrics: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple(sorted(metrics.items()))


# Field names mean the same in every event, so converters are chosen by name.
_ENCODERS: dict[str, _Convert] = {
    "at": _iso,
    "started_at": _iso,
    "finished_at": _iso,
    "reason": _value,
    "status_before": _value,
    "metrics": _metrics_to_json,
}
_DECODERS: dict[str, _Convert] = {
    "at": datetime.fromisoformat,
    "started_at": _from_iso,
    "finished_at": _from_iso,
    "reason": RejectionReason,
    "status_before": _status,
    "metrics": _metrics_from_json,
}

_Setter = Callable[[object, object], None]


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    decoder: _Convert | None
    required: bool
    default: object
    set_slot: _Setter


@dataclass(frozen=True, slots=True)
class _Spec:
    cls: type[Event]
    set_event_id: _Setter
    fields: tuple[_Field, ...]  # every field but event_id, in declaration order
    emptied: tuple[_Setter, ...] = ()  # record-only fields a slim decode sets to {}


RECORD_ONLY_FIELDS = frozenset({"delivery", "received"})
"""Fields an event keeps for the record only (the whole Apify delivery, the request as
received): `decide`, `replay` and `evolve` never read them, and they are most of an event's
bytes. Readers that fold states can leave them out of what they read (see `decode`'s `slim`)."""


def _slot_setter(cls: type[Event], name: str) -> _Setter:
    """The `__set__` of the slot descriptor for `name`, wherever in the classes it is declared."""
    owner = next(klass for klass in cls.__mro__ if name in vars(klass))
    setter: _Setter = vars(owner)[name].__set__
    return setter


def _spec(cls: type[Event], *, slim: bool = False) -> _Spec:
    names = [f.name for f in dataclasses.fields(cls) if f.name != "event_id"]
    emptied = {name for name in names if slim and name in RECORD_ONLY_FIELDS}
    return _Spec(
        cls=cls,
        set_event_id=_slot_setter(cls, "event_id"),
        fields=tuple(
            _Field(
                name=f.name,
                decoder=_DECODERS.get(f.name),
                required=f.default is dataclasses.MISSING,
                default=f.default,
                set_slot=_slot_setter(cls, f.name),
            )
            for f in dataclasses.fields(cls)
            if f.name != "event_id" and f.name not in emptied
        ),
        emptied=tuple(_slot_setter(cls, name) for name in sorted(emptied)),
    )


_SPECS: dict[str, _Spec] = {cls.__name__: _spec(cls) for cls in EVENT_TYPES}
_SLIM_SPECS: dict[str, _Spec] = {cls.__name__: _spec(cls, slim=True) for cls in EVENT_TYPES}
_ENCODE_FIELDS: dict[type[Event], tuple[tuple[str, _Convert | None], ...]] = {
    spec.cls: tuple((f.name, _ENCODERS.get(f.name)) for f in spec.fields)
    for spec in _SPECS.values()
}


def encode(event: Event) -> tuple[str, dict[str, Any]]:
    """The stored type name and JSON-ready data of `event` (its id is stored apart)."""
    data: dict[str, Any] = {}
    for name, convert in _ENCODE_FIELDS[type(event)]:
        value = getattr(event, name)
        data[name] = value if convert is None else convert(value)
    return type(event).__name__, data


_RECORD_ONLY_OF: dict[type[Event], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls) if f.name in RECORD_ONLY_FIELDS)
    for cls in EVENT_TYPES
}


def slim(event: Event) -> Event:
    """The event with its RECORD_ONLY_FIELDS emptied: all that `decide` and `replay` read of it,
    in about a kilobyte instead of several (the run stream cache keeps events this way;
    tests/api/test_stream_cache.py checks that decisions from slim histories equal those from
    the log's)."""
    names = _RECORD_ONLY_OF[type(event)]
    if not names:
        return event
    emptied: dict[str, Any] = {name: {} for name in names}
    return dataclasses.replace(event, **emptied)


def decode(event_id: uuid.UUID, type: str, data: Mapping[str, Any], *, slim: bool = False) -> Event:
    """The event stored as (`event_id`, `type`, `data`); `CorruptHistory` if it cannot be one.

    `slim`: the event's RECORD_ONLY_FIELDS are empty objects, whatever `data` holds of them
    (a reader that left them out of its read decodes with `slim=True`).
    """
    spec = (_SLIM_SPECS if slim else _SPECS).get(type)
    if spec is None:
        raise UnknownEventType(f"event {event_id}: unknown event type {type!r}")
    # The event is filled slot by slot, as a frozen dataclass's own __init__ would, but without
    # its per-field object.__setattr__ (decode is on the projection rebuild's hot path); every
    # field is set, so the result equals (and is as frozen as) the constructor's.
    event: Event = object.__new__(spec.cls)
    spec.set_event_id(event, event_id)
    try:
        for field in spec.fields:
            if field.required or field.name in data:
                value = data[field.name]
                field.set_slot(event, value if field.decoder is None else field.decoder(value))
            else:
                field.set_slot(event, field.default)
    except (KeyError, TypeError, ValueError) as err:
        raise UndecodableEvent(f"event {event_id} of type {type}: {err!r}") from err
    for set_empty in spec.emptied:
        set_empty(event, {})
    return event
