"""A protocol-level client of the served admin page, as a script that guesses passwords would be:
it loads /admin, opens the WebSocket ``/_stcore/stream`` with the page's cookies (nginx's route
cookie among them: a new client lands on either app process), and submits the sign-in form with the
widget states a click produces, reading the app's answer. No browser: hundreds of attempts a second
are possible. Built on bench/_stclient.py's HTTP client and message classes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

from bench._stclient import FINISHED, Http, Screen, ScreenError

TIMEOUT_S = 60.0


@dataclass
class AdminSession:
    """One browser session on /admin; ``headers`` are sent with the page load and the WebSocket
    upgrade (an attacker's own, e.g. X-Forwarded-For). ``page``: the page loaded over HTTP first, as
    a browser does (/admin); a script can load another, or none, and still name the admin page in
    its WebSocket messages."""

    base: str
    headers: dict[str, str] = field(default_factory=dict)
    page: str = "/admin"
    _page_hash: str = ""

    async def __aenter__(self) -> AdminSession:
        import websockets

        self._http = Http(self.base, {})
        await self._http.get(self.page)  # the page load (and nginx's route cookie)
        parts = urlsplit(self.base)
        headers = {"Origin": self.base.rstrip("/"), **self.headers}
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self._http.cookies.items())
        self._ws = await websockets.connect(
            f"ws://{parts.hostname}:{parts.port}/_stcore/stream",
            subprotocols=["streamlit"],
            additional_headers=headers,
            max_size=None,
            open_timeout=TIMEOUT_S,
        )
        self.screen = await self.rerun([], page_name="admin")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()
        self._http.close()

    async def sign_in(self, password: str) -> Screen:
        """Submit the sign-in form with ``password``; the screen the app answers with."""
        box = next((t for t in self.screen.of("text_input") if t.label == "Password"), None)
        submit = self.screen.button("Sign in")
        if box is None or submit is None:
            raise ScreenError(f"no sign-in form on screen: {self.screen.text()[:300]}")
        self.screen = await self.rerun(
            [WidgetState(id=box.id, string_value=password), WidgetState(id=submit.id, trigger_value=True)]
        )
        return self.screen

    async def send_raw(self, data: bytes) -> None:
        """Anything at all, as one WebSocket message (hostile-input tests)."""
        await self._ws.send(data)

    async def rerun(self, widgets: list[WidgetState], *, page_name: str = "") -> Screen:
        """Ask for a script run with ``widgets``; the screen of the run that finishes (after any st.rerun)."""
        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = self._page_hash
        msg.rerun_script.page_name = page_name
        msg.rerun_script.widget_states.widgets.extend(widgets)
        await self._ws.send(msg.SerializeToString())
        screen = Screen()
        while True:
            try:
                raw = await asyncio.wait_for(self._ws.recv(), timeout=TIMEOUT_S)
            except TimeoutError:
                raise ScreenError(f"no screen within {TIMEOUT_S:.0f} s") from None
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                screen = Screen()
            elif kind == "navigation":  # the page st.navigation runs (/admin): later reruns name it
                self._page_hash = fwd.navigation.page_script_hash
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                el = fwd.delta.new_element
                if el.WhichOneof("type") == "exception":
                    raise ScreenError(f"the app raised: {el.exception.message[:200]}")
                screen.elements.append(el)
            elif kind == "script_finished" and fwd.script_finished == FINISHED:
                return screen


def alerts(screen: Screen) -> list[str]:
    return [a.body for a in screen.of("alert")]


def signed_in(screen: Screen) -> bool:
    return screen.button("Sign out") is not None
