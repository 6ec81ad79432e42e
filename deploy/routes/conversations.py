"""Conversations and the feedback on their turns: ``POST /v1/feedback``, ``GET /v1/conversations``,
``GET /v1/conversations/{id}``.

Invariants:

* **Ownership.** A conversation belongs to the API key that created it. A customer-app key reads
  and rates only its own (another key's conversation is 404, as if missing: the store's ``owner=``
  check); an admin key reads all.
* Ids in the path and body follow ``agent.validation``'s identifier rule (400 otherwise), and
  paging is bounded (``offset`` up to ``validation.MAX_OFFSET``), so no request reaches the store
  with a value it cannot take.
* A customer key sees the public view of a turn (``schemas.public_turn``), never the
  conversation's metadata; reviewer fields and ``mark_for_training`` need an admin key (403).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from agent import validation
from agent.feedback_reasons import labels_for
from deploy import schemas
from deploy.dependencies import authenticate, get_service, parse_body, valid_id
from deploy.errors import ApiError

if TYPE_CHECKING:
    from agent.store import ApiKey

router = APIRouter()


@router.post("/v1/feedback")
async def feedback(request: Request, key: ApiKey = Depends(authenticate)) -> Any:
    service = get_service(request)
    body = await parse_body(request, schemas.FeedbackRequest)
    if key.scope != "admin" and (body.reviewer is not None or body.mark_for_training):
        raise ApiError(403, "reviewer and mark_for_training need an admin key", code="admin_key_required")

    def work() -> dict[str, Any]:
        turn = service.store.get_turn(body.turn_id)
        owner = None if key.scope == "admin" else key.id
        service.store.get_conversation(turn.conversation_id or "", owner=owner)  # 404 if not theirs
        if turn.role != "agent":
            raise ApiError(400, "feedback is given on agent turns", param="turn_id", code="not_an_agent_turn")
        saved = service.store.add_feedback(
            body.turn_id,
            thumbs=body.thumbs,
            rating=body.rating,
            comment=body.comment,
            correction=body.correction,
            labels=(*body.labels, *labels_for(body.reason)),
            reviewer=body.reviewer,
            mark_for_training=body.mark_for_training,
        )
        if body.reason == "personal_data":  # the customer flagged it: redacted in the store now
            service.store.redact_turn(body.turn_id)
        return {"object": "feedback", "conversation_id": turn.conversation_id, **saved.to_dict()}

    return await run_in_threadpool(work)


@router.get("/v1/conversations")
async def conversations(
    request: Request,
    key: ApiKey = Depends(authenticate),
    limit: int = Query(20, ge=1, le=100),
    offset: int = Query(0, ge=0, le=validation.MAX_OFFSET),
    status: str | None = Query(None),
) -> Any:
    service = get_service(request)
    owner = None if key.scope == "admin" else key.id
    rows = await run_in_threadpool(
        lambda: service.store.list_conversations(owner=owner, status=status, limit=limit + 1, offset=offset)
    )
    data = [{"object": "conversation.summary", **r.to_dict()} for r in rows[:limit]]
    return {"object": "list", "data": data, "has_more": len(rows) > limit}


@router.get("/v1/conversations/{conversation_id}")
async def conversation(conversation_id: str, request: Request, key: ApiKey = Depends(authenticate)) -> Any:
    service = get_service(request)
    valid_id(conversation_id, "conversation_id")
    admin = key.scope == "admin"

    def work() -> dict[str, Any]:
        found = service.store.get_conversation(conversation_id, owner=None if admin else key.id)
        data = found.to_dict()
        data["feedback"] = [f.to_dict() for f in service.store.feedback_for_conversation(conversation_id)]
        if not admin:
            data["turns"] = [schemas.public_turn(t) for t in data["turns"]]
            data.pop("metadata", None)
        return {"object": "conversation", **data}

    return await run_in_threadpool(work)
