"""What the nginx of ``lookalike serve --processes N`` adds for safety: security headers, the client
address the app processes may trust, and request limits on the admin sign-in's paths.

- **Headers** on every response: a Content-Security-Policy the app works under (checked in Chromium by
  tests/test_security_headers.py: no violation on the participant and admin pages), no framing
  (``X-Frame-Options: DENY`` and ``frame-ancestors 'none'``), ``Referrer-Policy: no-referrer`` (the
  participant's token is in the URL), ``X-Content-Type-Options: nosniff``.
- **Client address**: nginx passes the connection's own address as ``X-Real-IP`` and as the only
  ``X-Forwarded-For`` value, overwriting what a client sent, so a client cannot choose the address its
  sign-in attempts are counted under. Behind a proxy of your own (an HTTPS front end), name it in
  ``LOOKALIKE_TRUSTED_PROXIES``: nginx's realip module then takes the client's address from that
  proxy's ``X-Forwarded-For`` (the rightmost address not trusted), and only from it.
- **Request limits** per client address (``limit_req``): page loads of ``/admin``, and new WebSocket
  sessions (``/_stcore/stream``, where every page, the admin page's sign-in included, talks to the
  app). A sign-in is a message inside an open WebSocket, which the proxy cannot see: the limit on
  passwords evaluated is the app's own, counted in the database (survey/study/sign_ins.py); these
  limits cap how fast one address opens sessions to spread its attempts over.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

#: page loads of /admin per client address: a researcher opens it a few times an hour
ADMIN_RATE, ADMIN_BURST = "10r/m", 10
#: new WebSocket sessions per client address: one per page load or reload of a participant; the burst
#: lets a class or an office behind one NAT address start together
STREAM_RATE, STREAM_BURST = "60r/m", 120


def inline_script_hashes(index_html: Path) -> list[str]:
    """CSP hashes of the inline scripts of Streamlit's ``index.html`` (it sets one flag inline), so
    the policy allows exactly them and no other inline script."""
    scripts = re.findall(r"<script>(.*?)</script>", index_html.read_text(encoding="utf-8"), flags=re.S)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts]


def content_security_policy(index_html: Path) -> str:
    """The policy: everything from this origin only, no JavaScript ``eval``; Streamlit's styles are
    inline (emotion), its images include ``data:`` and ``blob:`` URLs, its WebSocket is same-origin
    ('self' covers ws:/wss:)."""
    # 'wasm-unsafe-eval': the protobuf decoder of Streamlit's bundle compiles a tiny WebAssembly
    # module (64-bit arithmetic); without it, it falls back to JavaScript but Chromium reports a
    # "script-src wasm-eval" violation on every page. It allows no JavaScript eval.
    # 'blob:': Streamlit loads a components.v2 component's script as a blob: module (the participant
    # page's signals of automation and its redirect countdown, survey/web/views/browser_signals.py and
    # countdown.py); only a script already running on the page can make a blob: URL.
    scripts = " ".join(["'self'", "'wasm-unsafe-eval'", *inline_script_hashes(index_html), "blob:"])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(index_html: Path) -> str:
    """``add_header`` lines for a location (nginx drops the server's add_header in any location that
    has its own, so each location includes these)."""
    headers = {
        "Content-Security-Policy": content_security_policy(index_html),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    return "".join(f'            add_header {k} "{v}" always;\n' for k, v in headers.items())


def limit_zones() -> str:
    """The http block's ``limit_req`` zones, keyed by the client's address."""
    return (
        f"    limit_req_zone $binary_remote_addr zone=lookalike_admin:1m rate={ADMIN_RATE};\n"
        f"    limit_req_zone $binary_remote_addr zone=lookalike_stream:10m rate={STREAM_RATE};\n"
        "    limit_req_status 429;\n"
    )


def admin_limit() -> str:
    return f"            limit_req zone=lookalike_admin burst={ADMIN_BURST} nodelay;\n"


def stream_limit() -> str:
    return f"            limit_req zone=lookalike_stream burst={STREAM_BURST} nodelay;\n"


def client_address_headers() -> str:
    """The proxy headers that carry the client's address to the app: set by nginx, never passed on."""
    return (
        "            proxy_set_header X-Real-IP $remote_addr;\n"
        "            proxy_set_header X-Forwarded-For $remote_addr;\n"
    )


def real_ip(trusted_proxies: tuple[str, ...]) -> str:
    """The server's realip directives for ``trusted_proxies`` (addresses or networks); none: nginx's
    peer is the client."""
    if not trusted_proxies:
        return ""
    lines = [f"        set_real_ip_from {p};\n" for p in trusted_proxies]
    return "".join(lines) + "        real_ip_header X-Forwarded-For;\n        real_ip_recursive on;\n"
