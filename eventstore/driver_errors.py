"""The one place where the driver's connection failures become the store's own error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from .errors import EventStoreError, StoreUnavailableError

# Errors that mean "the database is not there right now", as opposed to a refused statement.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    # "cannot switch to state …; another operation is in progress": the connection was cut in
    # the middle of a statement (the server went away) and is out of step with the protocol.
    asyncpg.exceptions.InternalClientError,
    TimeoutError,
)


# An argument refused, by the driver before sending it ("invalid input for query argument",
# asyncpg's own DataError, an InterfaceError by class and so to be told apart from the
# connection failures above) or by the server (SQLSTATE class 22, data exception).
_ARGUMENT_REFUSED = (asyncpg.exceptions._base.DataError, asyncpg.exceptions.DataError)


@asynccontextmanager
async def translate_driver_errors() -> AsyncIterator[None]:
    """Turn the driver's "database unavailable" errors into StoreUnavailableError."""
    try:
        yield
    except _ARGUMENT_REFUSED as err:
        # Our input, not the database's absence: never a 503, nor a connection given up.
        raise EventStoreError(f"the driver refused an argument: {err}") from err
    except _UNAVAILABLE as err:
        raise StoreUnavailableError(f"the database is unavailable: {type(err).__name__}") from err
