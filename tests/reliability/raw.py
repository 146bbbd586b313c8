"""HTTP/1.1 spoken by hand over a loopback socket: for requests no well-behaved client sends
(a body cut short, a client gone before the answer, a body that trickles or never ends)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .load import Operation


@dataclass(frozen=True, slots=True, kw_only=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def request_head(
    operation: Operation,
    port: int,
    *,
    content_length: int | None,
    request_id: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
) -> bytes:
    """The request line and headers of `operation`; chunked when `content_length` is None."""
    lines = [f"{operation.method} {operation.path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in operation.headers]
    if content_length is None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {content_length}")
    if request_id is not None:
        lines.append(f"X-Request-Id: {request_id}")
    lines += [f"{name}: {value}" for name, value in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_answer(reader: asyncio.StreamReader) -> RawAnswer:
    """One answer: status line, headers, and a Content-Length body (what the server sends)."""
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    headers = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return RawAnswer(status=status, headers=headers, body=body)


async def close(writer: asyncio.StreamWriter, *, abort: bool) -> None:
    """Go away: a FIN after what was sent (`abort=False`) or a reset (`abort=True`)."""
    if abort:
        writer.transport.abort()
    else:
        writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


def access_lines(log_path: Path) -> dict[str, dict[str, Any]]:
    """The served process's access log lines, by request id."""
    found = {}
    for line in log_path.read_text().splitlines():
        if '"runledger.access"' in line:
            record = json.loads(line)
            found[record["request_id"]] = record
    return found


async def access_line(log_path: Path, request_id: str, *, within_s: float) -> dict[str, Any]:
    """Wait until the server has finished with `request_id` (its access log line is written)."""
    async with asyncio.timeout(within_s):
        while True:  # another process writes the file: read it again until the line is there
            record = access_lines(log_path).get(request_id)
            if record is not None:
                return record
            await asyncio.sleep(0.02)
