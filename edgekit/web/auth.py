"""Who may read and write: passwords (scrypt, salted), sessions, the API token, cross-site checks.

Reads are open when the page listens on loopback; beyond it they need a session. Every write
needs either a session cookie *and* its CSRF token in ``X-CSRF-Token`` (and no cross-site
``Origin``/``Sec-Fetch-Site``), or the API token (``Authorization: Bearer``, from the file
``web-token`` in the state directory, readable by the service's user only). A password is only
ever stored as ``scrypt$N$r$p$salt$hash``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time
from pathlib import Path

SCRYPT = (2 ** 14, 8, 1)  # 16 MB and ~50 ms on a Pi 4: slow for a guesser, fine for a login
SESSION_SECONDS = 7 * 86400
COOKIE = "edgekit_session"


def hash_password(password: str, salt: bytes | None = None) -> str:
    n, r, p = SCRYPT
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=64 * 1024 * 1024, dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.urlsafe_b64decode(digest))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_token(state: Path) -> str:
    """The token scripts use for writes; made once, readable by this user only."""
    path = state / "web-token"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token


class Sessions:
    """Session id -> (CSRF token, expiry); in memory, so a restart logs everyone out."""

    def __init__(self, limit: int = 1000):
        self._lock = threading.Lock()
        self._by_id: dict[str, tuple[str, float]] = {}
        self.limit = limit

    def new(self) -> tuple[str, str]:
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            for k in [k for k, (_, exp) in self._by_id.items() if exp < now]:
                del self._by_id[k]
            while len(self._by_id) >= self.limit:  # bounded: the oldest goes
                del self._by_id[next(iter(self._by_id))]
            self._by_id[sid] = (csrf, now + SESSION_SECONDS)
        return sid, csrf

    def csrf(self, sid: str | None) -> str | None:
        if not sid:
            return None
        with self._lock:
            found = self._by_id.get(sid)
        if found is None or found[1] < time.time():
            return None
        return found[0]


def cookie_value(header: str | None, name: str = COOKIE) -> str | None:
    from http.cookies import CookieError, SimpleCookie

    if not header:
        return None
    try:
        jar = SimpleCookie(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def cross_site(headers, host_header: str | None) -> str | None:
    """Why a request looks cross-site (a reason), or None. Browsers send these on writes."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site: {site}"
    origin = headers.get("Origin")
    if origin is not None and origin != f"http://{host_header}":
        return f"Origin {origin} is not this page"
    return None
