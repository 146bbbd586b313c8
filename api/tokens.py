"""The API and webhook tokens: from the environment, or generated once and kept on disk."""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import orjson

TOKEN_FILE_NAME = "tokens.json"  # noqa: S105 — a file name, not a secret


@dataclass(frozen=True, slots=True, kw_only=True)
class Tokens:
    api_token: str
    webhook_token: str
    generated: bool
    """True when this start made them (the only time they are printed)."""
    path: Path | None


def load_or_generate(data_dir: Path, *, api_token: str | None, webhook_token: str | None) -> Tokens:
    """Tokens given by the caller win; the rest come from the token file, made on first use."""
    path = data_dir / TOKEN_FILE_NAME
    kept: dict[str, str] = {}
    if path.exists():
        kept = orjson.loads(path.read_bytes())
    generated = False
    if not kept.get("api_token") or not kept.get("webhook_token"):
        kept = {"api_token": secrets.token_urlsafe(32), "webhook_token": secrets.token_urlsafe(32)}
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written with owner-only permissions before any secret goes in.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(orjson.dumps(kept, option=orjson.OPT_INDENT_2))
        generated = True
    return Tokens(
        api_token=api_token or kept["api_token"],
        webhook_token=webhook_token or kept["webhook_token"],
        generated=generated and not (api_token and webhook_token),
        path=path,
    )


def read_kept(data_dir: Path) -> tuple[str, str] | None:
    """The (API token, webhook token) a local `runledger serve` generated, if it did."""
    path = data_dir / TOKEN_FILE_NAME
    if not path.exists():
        return None
    kept = orjson.loads(path.read_bytes())
    if not kept.get("api_token") or not kept.get("webhook_token"):
        return None
    return kept["api_token"], kept["webhook_token"]


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so response timing does not reveal how much of a guess matched."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())
