"""Who is the owner: `ASSISTANT_OWNER_TOKEN`, sent by a script as `Authorization: Bearer <token>`,
or given once in the sign-in form, which sets a session cookie (HttpOnly, SameSite=Strict).

The cookie holds no token: it is an expiry and an HMAC of it keyed by the token, so any app
process checks it without shared state, and changing the token ends every session. Each form
carries its own CSRF token (a time, a nonce and their HMAC, for that form's purpose), and a
sign-in or sign-out is taken only from this site's own pages (`Origin`, `Sec-Fetch-Site`).
Every comparison is constant-time (`hmac.compare_digest`). The token never travels in a URL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

SESSION_COOKIE = "policy_desk_owner"
SESSION_SECONDS = 12 * 3600
FORM_SECONDS = 3600  # how long a form's CSRF token stays good


def _mac(token: str, message: str) -> str:
    return hmac.new(token.encode(), message.encode(), hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    """Constant-time: how much of a guess was right does not show in the time taken."""
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def bearer_is_owner(request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and token_matches(given.strip(), token)


def new_session(token: str, now: float | None = None) -> str:
    expiry = int((now or time.time()) + SESSION_SECONDS)
    return f"{expiry}.{_mac(token, f'session:{expiry}')}"


def _fresh(stamp: str, now: float | None, ahead: bool) -> bool:
    try:
        value = int(stamp)
    except ValueError:
        return False
    now = now or time.time()
    return value > now if ahead else 0 <= now - value <= FORM_SECONDS


def session_is_owner(value: str, token: str, now: float | None = None) -> bool:
    expiry, _, mac = (value or "").partition(".")
    return bool(token) and _fresh(expiry, now, ahead=True) and hmac.compare_digest(
        mac.encode(), _mac(token, f"session:{expiry}").encode())


def is_owner(request, token: str) -> bool:
    """The request comes with the token (a script) or a live session cookie (a browser)."""
    return bearer_is_owner(request, token) or session_is_owner(request.cookies.get(SESSION_COOKIE, ""), token)


def form_token(token: str, purpose: str, now: float | None = None) -> str:
    """A fresh CSRF token for one form (`purpose`: "login" or "logout")."""
    stamp, nonce = str(int(now or time.time())), secrets.token_urlsafe(12)
    return f"{stamp}.{nonce}.{_mac(token, f'form:{purpose}:{stamp}:{nonce}')}"


def form_token_ok(value: str, token: str, purpose: str, now: float | None = None) -> bool:
    stamp, _, rest = (value or "").partition(".")
    nonce, _, mac = rest.partition(".")
    return bool(token and nonce) and _fresh(stamp, now, ahead=False) and hmac.compare_digest(
        mac.encode(), _mac(token, f"form:{purpose}:{stamp}:{nonce}").encode())


def from_this_site(request) -> bool:
    """A form post sent by this site's own page: its `Origin` names this host, and the browser
    does not call it cross-site. A post without `Origin` is refused (browsers send it on POST)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin", "")
    return bool(origin) and origin != "null" and urlsplit(origin).netloc.lower() == request.headers.get(
        "host", "").lower()
