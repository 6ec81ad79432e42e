"""The API's OpenAPI document (``GET /openapi.json``): FastAPI's, completed with what the routes
do by hand, so that a tool driven by the document (schemathesis, client generators) sees the
real contract.

* Request bodies: the routes parse their bodies themselves, after the key and rate-limit checks
  (``deploy.dependencies.parse_body``), so FastAPI does not know them; they are added here from
  the same pydantic models, strict types included.
* Responses: every operation may answer an error in the OpenAI shape (``default``); a chat
  completion answers JSON or, when streamed, ``text/event-stream``; ``/metrics`` answers text.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from deploy import schemas

BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("/v1/chat/completions", "post"): schemas.ChatCompletionRequest,
    ("/v1/feedback", "post"): schemas.FeedbackRequest,
    ("/v1/admin/keys", "post"): schemas.KeyRequest,
}
REF = "#/components/schemas/{model}"

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
COMPLETION = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices", "usage"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {
                "type": "object",
                "required": ["index", "message", "finish_reason"],
                "properties": {
                    "index": {"const": 0},
                    "message": {
                        "type": "object",
                        "required": ["role", "content"],
                        "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}},
                    },
                    "finish_reason": {"enum": ["stop", "length"]},
                },
            },
        },
        "usage": {
            "type": "object",
            "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
            "properties": {
                name: {"type": "integer", "minimum": 0}
                for name in ("prompt_tokens", "completion_tokens", "total_tokens")
            },
        },
        "supportloop": {"type": "object"},
    },
}


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def build(app: FastAPI) -> dict[str, Any]:
    spec = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR
    components["ChatCompletion"] = COMPLETION
    for (path, method), model in BODIES.items():
        body = model.model_json_schema(ref_template=REF)
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
        operation = spec["paths"][path][method]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
        }
    error = {
        "description": "An error in the OpenAI shape",
        "content": _json({"$ref": "#/components/schemas/Error"}),
    }
    for operations in spec["paths"].values():
        for operation in operations.values():
            operation["responses"]["default"] = error
            operation["responses"].pop("422", None)  # refused input is a 400 (the default above)
    chat = spec["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]
    chat["content"] = {
        **_json({"$ref": "#/components/schemas/ChatCompletion"}),
        "text/event-stream": {"schema": {"type": "string"}},
    }
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]
    metrics["content"] = {"text/plain": {"schema": {"type": "string"}}}  # Prometheus text format
    return spec


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}
