"""Product images from URLs: polite concurrent downloads into a content-addressed image store.

Layout of the store (``$LOOKALIKE_HOME/images`` by default)::

    blobs/<sha256[:2]>/<sha256>          the image bytes, once per distinct content
    urls/<h[:2]>/<h>.json                one status per URL (h = SHA-256 of the URL)

A URL's status is ``ok`` (with the image's SHA-256) or why it failed: ``http_<code>``,
``timeout``, ``too_large``, ``not_an_image`` (the server sent another content type, e.g. an
HTML error page), ``undecodable`` (bytes that are no image we can read), ``truncated`` (the
connection closed before the announced length), ``too_many_redirects``, ``connection_error``.
Status files and blobs are written atomically (temporary file, rename), so a fetch killed at
any instant resumes without fetching again what it has; failed URLs are tried again by the
next fetch.

Politeness: at most ``per_host`` requests at once to one host, ``workers`` overall, a
``User-Agent`` naming the tool, timeouts on connecting and on every read plus a deadline for
the whole response, at most ``retries`` retries (timeouts, connection errors, HTTP 429 and 5xx
only) after ``backoff * 2**attempt`` seconds (or the server's ``Retry-After``), at most
``max_redirects`` redirects, and at most ``max_bytes`` per image.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import urllib3

from similarity.errors import UserError
from similarity.files import atomic_write_bytes
from similarity.images import UnreadableImage, load_rgb
from similarity.progress import progress_bar

USER_AGENT = "lookalike/0.1 (product image fetch; +https://pypi.org/project/lookalike/)"
RETRYABLE = {429, 500, 502, 503, 504}


class FetchError(UserError, ValueError):
    """A fetch that cannot start as asked (a URL that is not http/https, bad limits)."""


@dataclass(frozen=True)
class FetchPolicy:
    workers: int = 16
    per_host: int = 4
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    deadline: float = 60.0  # seconds for one whole response
    retries: int = 3
    backoff: float = 0.5
    max_redirects: int = 5
    max_bytes: int = 20 << 20

    def __post_init__(self) -> None:
        if min(self.workers, self.per_host) < 1 or self.retries < 0 or self.max_redirects < 0 or self.max_bytes < 1:
            raise FetchError(f"fetch limits must be positive (retries/redirects may be 0): {self}")


@dataclass(frozen=True)
class UrlStatus:
    url: str
    status: str  # "ok" or the reason it failed
    sha256: str | None = None
    detail: str = ""
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class FetchReport:
    statuses: dict[str, UrlStatus]  # url -> its status
    fetched: int  # downloaded now (the rest were in the store already or failed)
    counts: dict[str, int] = field(default_factory=dict)  # status -> URLs

    @property
    def failed(self) -> list[UrlStatus]:
        return [s for s in self.statuses.values() if not s.ok]


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def check_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FetchError(f"{where}: image_url '{url}' is not an http(s) URL; give http://... or https://...")
    return url


class ImageStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256

    def status_path(self, url: str) -> Path:
        h = _url_key(url)
        return self.root / "urls" / h[:2] / f"{h}.json"

    def status(self, url: str) -> UrlStatus | None:
        """The stored status of ``url`` (None: never fetched); an ``ok`` whose blob is gone is None."""
        p = self.status_path(url)
        if not p.is_file():
            return None
        data = json.loads(p.read_text())
        st = UrlStatus(data["url"], data["status"], data.get("sha256"), data.get("detail", ""), data.get("attempts", 0))
        if st.ok and not (st.sha256 and self.blob_path(st.sha256).is_file()):
            return None
        return st

    def put_status(self, st: UrlStatus) -> None:
        blob = json.dumps(
            {"url": st.url, "status": st.status, "sha256": st.sha256, "detail": st.detail, "attempts": st.attempts}
        ).encode()
        atomic_write_bytes(self.status_path(st.url), blob)


class _Failure(Exception):
    def __init__(self, status: str, detail: str, *, retry: bool = False, wait: float | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.retry, self.wait = status, detail, retry, wait


class Fetcher:
    """Downloads URLs into an :class:`ImageStore` under a :class:`FetchPolicy`."""

    def __init__(self, store: ImageStore, policy: FetchPolicy | None = None) -> None:
        self.store, self.policy = store, policy or FetchPolicy()
        p = self.policy
        self.http = urllib3.PoolManager(
            num_pools=64,
            maxsize=p.per_host,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=p.connect_timeout, read=p.read_timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "image/*"},
        )
        self._hosts: dict[str, threading.Semaphore] = {}
        self._lock = threading.Lock()

    def _host(self, url: str) -> threading.Semaphore:
        # One semaphore per host, created under a lock: two threads seeing a new host at once
        # must share one, or the host would get twice the allowed connections.
        host = urlsplit(url).netloc.lower()
        with self._lock:
            return self._hosts.setdefault(host, threading.Semaphore(self.policy.per_host))

    def fetch(self, urls: Sequence[str], *, progress: bool = False) -> FetchReport:
        """Fetch every URL the store does not hold yet; return every URL's status."""
        unique = list(dict.fromkeys(urls))
        statuses: dict[str, UrlStatus] = {}
        todo = []
        for url in unique:
            st = self.store.status(url)
            if st is not None and st.ok:
                statuses[url] = st
            else:
                todo.append(url)
        bar = progress_bar(total=len(unique), initial=len(statuses), desc="fetching", enabled=progress)
        with ThreadPoolExecutor(max_workers=self.policy.workers, thread_name_prefix="lookalike-fetch") as pool:
            # At most a few URLs per worker are queued (a million-URL feed is not a million futures),
            # and results are taken as they finish, so one slow host does not hold the others up.
            pending: set[Future[UrlStatus]] = set()
            for url in todo:
                if len(pending) >= 4 * self.policy.workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        statuses[fut.result().url] = fut.result()
                        bar.update()
                pending.add(pool.submit(self.fetch_one, url))
            for fut in as_completed(pending):
                statuses[fut.result().url] = fut.result()
                bar.update()
        bar.close()
        ordered = {u: statuses[u] for u in unique}
        return FetchReport(ordered, len(todo), dict(Counter(s.status for s in ordered.values())))

    def fetch_one(self, url: str) -> UrlStatus:
        """Download one URL (with retries) and store its image and status."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._host(url):
                    sha = self._download(url)
                st = UrlStatus(url, "ok", sha, attempts=attempt)
                break
            except _Failure as f:
                if f.retry and attempt <= self.policy.retries:
                    time.sleep(f.wait if f.wait is not None else self.policy.backoff * 2 ** (attempt - 1))
                    continue
                st = UrlStatus(url, f.status, None, f.detail, attempt)
                break
        self.store.put_status(st)
        return st

    def _download(self, url: str) -> str:
        p = self.policy
        seen = [url]
        current = url
        for _ in range(p.max_redirects + 1):
            try:
                resp = self.http.request("GET", current, preload_content=False, redirect=False)
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as exc:
                kind = "timeout" if isinstance(exc, urllib3.exceptions.TimeoutError) else "connection_error"
                raise _Failure(kind, str(exc), retry=True) from exc
            except urllib3.exceptions.HTTPError as exc:
                raise _Failure("connection_error", str(exc), retry=True) from exc
            complete = False
            try:
                if resp.status in (301, 302, 303, 307, 308):
                    location = resp.headers.get("Location")
                    if not location:
                        raise _Failure(f"http_{resp.status}", "redirect without a Location header")
                    current = urljoin(current, location)
                    if current in seen:
                        raise _Failure("too_many_redirects", f"redirect loop: {' -> '.join([*seen, current])}")
                    seen.append(current)
                    continue
                if resp.status != 200:
                    wait = _retry_after(resp.headers.get("Retry-After"))
                    raise _Failure(
                        f"http_{resp.status}", f"HTTP {resp.status}", retry=resp.status in RETRYABLE, wait=wait
                    )
                sha = self._store_body(url, resp)
                complete = True
                return sha
            finally:
                # A body left unread (redirect, error page, an aborted download) would poison a
                # kept-alive connection for the next request on it: close it instead.
                if not complete:
                    resp.close()
                resp.release_conn()
        raise _Failure("too_many_redirects", f"more than {p.max_redirects} redirects: {' -> '.join(seen)}")

    def _store_body(self, url: str, resp: urllib3.BaseHTTPResponse) -> str:
        p = self.policy
        ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype and not ctype.startswith("image/") and ctype != "application/octet-stream":
            raise _Failure("not_an_image", f"Content-Type {ctype}")
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > p.max_bytes:
            raise _Failure("too_large", f"Content-Length {int(length):,} > {p.max_bytes:,} bytes")
        tmp = self.store.root / "blobs" / f".{_url_key(url)}.{threading.get_ident()}.part"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        h, size, started = hashlib.sha256(), 0, time.monotonic()
        try:
            with open(tmp, "wb") as fh:
                try:
                    for chunk in resp.stream(64 << 10):
                        size += len(chunk)
                        if size > p.max_bytes:
                            raise _Failure("too_large", f"more than {p.max_bytes:,} bytes")
                        if time.monotonic() - started > p.deadline:
                            raise _Failure("timeout", f"response took over {p.deadline} s", retry=True)
                        h.update(chunk)
                        fh.write(chunk)
                except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ReadTimeoutError) as exc:
                    raise _Failure("timeout", f"read timed out after {size:,} bytes", retry=True) from exc
                except urllib3.exceptions.ProtocolError as exc:  # e.g. a body shorter than its Content-Length
                    raise _Failure("truncated", f"connection broken after {size:,} bytes: {exc}", retry=True) from exc
            try:
                load_rgb(tmp)
            except UnreadableImage as exc:
                raise _Failure("undecodable", str(exc).replace(str(tmp), "body")) from exc
            sha = h.hexdigest()
            dest = self.store.blob_path(sha)
            if dest.is_file():  # the same image under another URL: stored once
                tmp.unlink()
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                tmp.replace(dest)
            return sha
        finally:
            tmp.unlink(missing_ok=True)


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return min(float(value.strip()), 60.0)
    return None
