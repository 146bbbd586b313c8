"""The served OpenAPI document: valid OpenAPI 3, and it describes every route and query."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from api.app import create_app
from api.openapi import build_document

from .conftest import Client, make_config

API_MD_QUERIES = (
    "/runs",
    "/runs/{run_id}",
    "/runs/{run_id}/events",
    "/runs/{run_id}/timeline",
    "/diagnostics/missing-records",
    "/diagnostics/rejections",
    "/diagnostics/dead-letters",
    "/reports/clients",
    "/reports/daily",
    "/health",
    "/metrics",
    "/openapi.json",
)


async def served(client: Client) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status == 200
    document: dict[str, Any] = await response.json()
    return document


async def test_served_document_is_valid_openapi_and_equals_the_built_one(client: Client) -> None:
    document = await served(client)
    validate(document)
    assert document == build_document()


def test_every_query_of_api_md_is_described_as_a_get() -> None:
    paths = build_document()["paths"]
    missing = [path for path in API_MD_QUERIES if "get" not in paths.get(path, {})]
    assert missing == []


def test_every_route_of_the_app_is_described() -> None:
    app = create_app(make_config("postgresql://unused@127.0.0.1:1/unused"))
    paths = build_document()["paths"]
    routes = {
        (resource.canonical, route.method.lower())
        for resource in app.router.resources()
        for route in resource
        if route.method != "HEAD"
    }
    undescribed = sorted(
        (path, method) for path, method in routes if method not in paths.get(path, {})
    )
    assert undescribed == []


def test_diagnostics_lists_document_their_filters_cursor_and_min_position() -> None:
    paths = build_document()["paths"]
    expected = {
        "/diagnostics/missing-records": {"resolved", "limit", "cursor", "min_position"},
        "/diagnostics/rejections": {"reason", "run_id", "limit", "cursor", "min_position"},
        "/diagnostics/dead-letters": {"reason", "limit", "cursor", "min_position"},
    }
    for path, names in expected.items():
        parameters = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert parameters == names, path
        assert {"200", "401", "422", "503"} <= set(paths[path]["get"]["responses"]), path
