"""A light, protocol-level participant for bench/served.py: it talks to a served app as a browser
does, with the message classes the streamlit package ships, at a fraction of a browser's CPU.

Per participant: GET the page with the recruitment parameters (and the scripts and styles it
names, the health and host-config endpoints, as the browser's loader does), open the WebSocket
``/_stcore/stream`` with the page's cookies (nginx's route cookie among them), send ``BackMsg``
rerun requests with the widget states a click produces, read ``ForwardMsg`` deltas until the
script run finishes, and fetch every image of a screen over HTTP (up to 6 at once, each URL
once, as a browser's cache does). One asyncio loop runs every participant.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

FINISHED = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_SUCCESSFULLY")
TIMEOUT_S = 60.0
IDLE_S = 4.0  # idle keep-alive connections older than this are not reused (uvicorn closes them at 5 s)


class ScreenError(RuntimeError):
    """The app showed something a participant could not go on from (an error, no screen in time)."""


@dataclass
class Screen:
    elements: list = field(default_factory=list)  # streamlit.proto Element messages, in order

    def of(self, kind: str) -> list:
        return [getattr(e, kind) for e in self.elements if e.WhichOneof("type") == kind]

    def button(self, label: str):
        return next((b for b in self.of("button") if b.label == label), None)

    def text(self) -> str:
        return "\n".join([m.body for m in self.of("markdown")] + [a.body for a in self.of("alert")])

    def progress(self) -> str:
        return next((p.text for p in self.of("progress")), "")

    def image_urls(self) -> list[str]:
        return [img.url for lst in self.of("imgs") for img in lst.imgs]


class Http:
    """HTTP/1.1 GETs over keep-alive connections (a browser's six per host)."""

    def __init__(self, base: str, cookies: dict[str, str]) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "localhost", parts.port or 80
        self.cookies = cookies
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._slots = asyncio.Semaphore(6)

    async def get(self, path: str) -> bytes:
        async with self._slots:
            while self._idle:
                reader, writer, since = self._idle.pop()
                if time.monotonic() - since < IDLE_S:
                    try:
                        return await self._get(reader, writer, path)
                    except (asyncio.IncompleteReadError, ConnectionError):
                        # the server closed the idle connection as the request went out: a
                        # browser retries on a new connection, so does this client
                        writer.close()
                        break
                writer.close()
            reader, writer = await asyncio.open_connection(self.host, self.port)
            return await self._get(reader, writer, path)

    async def _get(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> bytes:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept-Encoding: gzip\r\n"
            f"{'Cookie: ' + cookie + chr(13) + chr(10) if cookie else ''}\r\n".encode()
        )
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status = int(head.split(" ", 2)[1])
        headers = [line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line]
        for name, value in headers:
            if name.lower() == "set-cookie":
                k, _, v = value.strip().split(";", 1)[0].partition("=")
                self.cookies[k] = v
        hdr = {n.lower(): v.strip() for n, v in headers}
        if hdr.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                body += await reader.readexactly(size + 2)
            await reader.readuntil(b"\r\n")
        else:
            body = await reader.readexactly(int(hdr.get("content-length", "0")))
        if hdr.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer, time.monotonic()))
        if status != 200:
            raise ScreenError(f"GET {path}: HTTP {status}")
        return body

    def close(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()


@dataclass
class Participant:
    base: str  # e.g. http://localhost:8501/
    pid: str
    think_s: float
    rng: random.Random
    first_page_s: float | None = None
    submit_s: list[float] = field(default_factory=list)  # trial answer -> next screen shown, images loaded
    answers: int = 0
    completion: str | None = None
    first_page_only: bool = False  # load the consent page and leave (a server's warm-up)
    _seen: set[str] = field(default_factory=set)

    async def run(self) -> None:
        import websockets

        query = urlencode({"PROLIFIC_PID": self.pid, "STUDY_ID": "bench", "SESSION_ID": f"s-{self.pid}"})
        http = Http(self.base, {})
        t0 = time.perf_counter()
        page = (await http.get(f"/?{query}")).decode("utf-8", "replace")
        assets = re.findall(r'(?:src|href)="\.?/?(static/[^"]+\.(?:js|css))"', page)
        await asyncio.gather(*(http.get("/" + a) for a in assets))
        await http.get("/_stcore/health")
        await http.get("/_stcore/host-config")
        parts = urlsplit(self.base)
        ws_url = f"ws://{parts.hostname}:{parts.port or 80}/_stcore/stream"
        headers = {"Origin": self.base.rstrip("/")}
        if http.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        try:
            async with websockets.connect(
                ws_url, subprotocols=["streamlit"], additional_headers=headers, max_size=None, open_timeout=TIMEOUT_S
            ) as ws:
                self._ws, self._http, self._query, self._page_hash = ws, http, query, ""
                screen = await self._rerun([])
                self.first_page_s = time.perf_counter() - t0
                if not self.first_page_only:
                    await self._take_study(screen)
        finally:
            http.close()

    async def _take_study(self, screen: Screen) -> None:
        screen = await self._click(screen, "I agree, start")
        screen = await self._click(screen, "Start")
        while True:
            progress = screen.progress()
            if progress.startswith("Screen "):
                await asyncio.sleep(self.rng.expovariate(1 / self.think_s) if self.think_s > 0 else 0)
                t0 = time.perf_counter()
                nxt = await self._rerun(self._answer(screen))
                if nxt.progress() == progress and nxt.image_urls() == screen.image_urls():
                    raise ScreenError(f"the answer to '{progress}' was not taken: {nxt.text()[:200]}")
                self.submit_s.append(time.perf_counter() - t0)
                self.answers += 1
                screen = nxt
            elif screen.button("Finish") is not None:
                screen = await self._click(screen, "Finish")
            elif "Your completion code" in screen.text():
                self.completion = screen.text().split("**")[-2] if "**" in screen.text() else ""
                return
            else:
                raise ScreenError(f"unexpected screen: {screen.text()[:300]}")

    async def _click(self, screen: Screen, label: str) -> Screen:
        button = screen.button(label)
        if button is None:
            raise ScreenError(f"no button '{label}' on screen: {screen.text()[:300]}")
        return await self._rerun([WidgetState(id=button.id, trigger_value=True)])

    def _answer(self, screen: Screen) -> list[WidgetState]:
        """The widget states of a trial form's submit, a random answer as a participant clicks it; on a
        swipe round's screen a press of Like or Not for me (a like with probability 1/2), or of the
        first Pick button."""
        swipe = [b for b in screen.of("button") if b.label in ("Like", "Not for me") or b.label.startswith("Pick ")]
        if swipe:
            if swipe[0].label.startswith("Pick "):
                return [WidgetState(id=swipe[0].id, trigger_value=True)]
            press = screen.button("Like" if self.rng.random() < 0.5 else "Not for me")
            return [WidgetState(id=press.id, trigger_value=True)]
        radios = screen.of("radio")
        states = []
        if len(radios) == 2:  # best-worst: two different sets
            best, worst = self.rng.sample(list(radios[0].options), 2)
            states += [
                WidgetState(id=radios[0].id, string_value=best),
                WidgetState(id=radios[1].id, string_value=worst),
            ]
        else:
            states += [WidgetState(id=r.id, string_value=self.rng.choice(list(r.options))) for r in radios]
        states += [WidgetState(id=c.id, bool_value=self.rng.random() < 0.5) for c in screen.of("checkbox")]
        submit = next(b for b in screen.of("button") if b.is_form_submitter and b.label == "Submit")
        return [*states, WidgetState(id=submit.id, trigger_value=True)]

    async def _rerun(self, widgets: list[WidgetState]) -> Screen:
        """Ask for a script run with ``widgets`` and return the screen of the run that finishes
        (after any st.rerun), once its images have loaded."""
        msg = BackMsg()
        msg.rerun_script.query_string = self._query
        msg.rerun_script.page_script_hash = self._page_hash
        msg.rerun_script.widget_states.widgets.extend(widgets)
        await self._ws.send(msg.SerializeToString())
        screen = Screen()
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                raw = await asyncio.wait_for(self._ws.recv(), timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                raise ScreenError(f"no screen within {TIMEOUT_S:.0f} s") from None
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                screen = Screen()
                self._page_hash = fwd.new_session.page_script_hash
            elif kind == "page_info_changed":
                self._query = fwd.page_info_changed.query_string
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                el = fwd.delta.new_element
                if el.WhichOneof("type") == "exception":
                    raise ScreenError(f"the app raised: {el.exception.message[:200]}")
                if el.WhichOneof("type") == "alert" and el.alert.format == el.alert.ERROR:
                    raise ScreenError(f"the app showed an error: {el.alert.body[:200]}")
                screen.elements.append(el)
            elif kind == "ref_hash":
                raise ScreenError("the server sent a cached-message reference this client never announced")
            elif kind == "script_finished" and fwd.script_finished == FINISHED:
                new = [u for u in screen.image_urls() if u not in self._seen]
                await asyncio.gather(*(self._http.get(u if u.startswith("/") else "/" + u) for u in new))
                self._seen.update(new)
                return screen
