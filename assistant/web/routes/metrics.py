"""`GET /metrics`: Prometheus metrics (`metrics.py`), with ASSISTANT_METRICS=1 only; served to
loopback clients, and to any other only with the owner's token (`Authorization: Bearer …`)."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..deps import Web
from ..owner_auth import bearer_is_owner
from ..security import client_address

router = APIRouter()


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # "unknown", a test client's name
        return False


@router.get("/metrics", include_in_schema=False)
def scrape(request: Request, web: Web):
    if not (is_loopback(client_address(request, web.settings.web.trust_proxy))
            or bearer_is_owner(request, web.settings.owner.owner_token)):
        return JSONResponse({"detail": "Metrics are served to loopback clients, and to others with the owner's "
                                       "token (Authorization: Bearer …)."}, status_code=403,
                            headers={"WWW-Authenticate": "Bearer"})
    body, content_type = web.metrics.render()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
