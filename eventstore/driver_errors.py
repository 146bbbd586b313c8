"""The one place where the driver's connection failures become the store's own error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from .errors import StoreUnavailableError

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


@asynccontextmanager
async def translate_driver_errors() -> AsyncIterator[None]:
    """Turn the driver's "database unavailable" errors into StoreUnavailableError."""
    try:
        yield
    except _UNAVAILABLE as err:
        raise StoreUnavailableError(f"the database is unavailable: {type(err).__name__}") from err
