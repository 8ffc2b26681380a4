"""Subscriptions (订阅): where each delivery into a consumer's database stands, for both sides —
the subscribing app (and its department's staff) and the department that owns the data. They
are created by the hub's operator (``sharehub subscriptions create``): a target is a connection
ref the operator configured for that consumer, which an app must not be able to choose."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from catalog.access.gate import Principal
from catalog.api.context import AnyPrincipal, CallDep, HubDep
from catalog.api.errors_doc import errors
from catalog.errors import HubError
from catalog.sharing import subscriptions

router = APIRouter(prefix="/api/v1", tags=["subscriptions"])

Id = Annotated[int, Path(ge=1, le=2_147_483_647)]


def _visible(hub: Any, principal: Principal, sub: subscriptions.Subscription) -> bool:
    if principal.kind == "app":
        return subscriptions.visible(hub.engine, sub, app_id=principal.app_id, department_code=None)
    if principal.kind != "staff":
        return False
    return subscriptions.visible(hub.engine, sub, app_id=None, department_code=principal.department_code)


@router.get("/subscriptions", responses=errors(401), summary="Subscriptions the caller may see")
def list_subscriptions(hub: HubDep, call: CallDep, principal: AnyPrincipal) -> dict[str, Any]:
    call.action = "subscriptions.list"
    items = [s.to_json() for s in subscriptions.list_subscriptions(hub.engine) if _visible(hub, principal, s)]
    call.row_count = len(items)
    return {"items": items, "count": len(items)}


@router.get(
    "/subscriptions/{subscription_id}/deliveries",
    responses=errors(401, 404),
    summary="A subscription's deliveries, newest first, with row counts",
)
def deliveries(subscription_id: Id, hub: HubDep, call: CallDep, principal: AnyPrincipal) -> dict[str, Any]:
    call.action = "subscriptions.deliveries"
    try:
        sub = subscriptions.get(hub.engine, subscription_id)
    except HubError:
        sub = None
    if sub is None or not _visible(hub, principal, sub):
        raise HubError("subscription_not_found", id=subscription_id)  # the same answer either way
    call.dataset_code = sub.dataset_code
    items = subscriptions.history(hub.engine, subscription_id)
    return {"subscription": sub.to_json(), "items": items, "count": len(items)}
