"""The server of the coach's live page (``spinemon live --view``): the page
(:func:`spinemon.app.view.page_html`) and a WebSocket that pushes a
:class:`~spinemon.app.view.ViewFeed`'s messages, with aiohttp (the ``view``
extra). It binds to 127.0.0.1 only, or with ``lan=True`` (``--view-lan``, an
opt-in the command warns about) to every interface, so a coach's phone on
the local network can open it; every request must carry the session's random
token (``?t=``, :func:`secrets.token_urlsafe`), else 403.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from typing import TYPE_CHECKING

from spinemon.app.view import MISSING_AIOHTTP, ViewFeed, ViewUsageError, have_aiohttp, page_html

if TYPE_CHECKING:
    from aiohttp.web import AppRunner  # the view extra

__all__ = ["LAN_BIND", "VIEW_HOST", "ViewServer", "lan_address"]

VIEW_HOST = "127.0.0.1"  # by default never another interface: the page is for this machine's browser
LAN_BIND = "0.0.0.0"  # --view-lan only (opt-in, with a warning): a coach's phone on the local network


def lan_address() -> str:
    """This computer's address on the local network (the interface of its
    default route; no packet is sent), else its host name."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        addr = s.getsockname()[0]
    except OSError:
        addr = ""
    finally:
        s.close()
    return addr if addr and not addr.startswith("127.") and addr != "0.0.0.0" else socket.gethostname()


class ViewServer:
    """The page and its WebSocket on ``http://127.0.0.1:PORT/?t=TOKEN``
    (``port`` 0: one the OS chooses). :meth:`start` binds; :attr:`url` is
    then the address to open; :meth:`stop` closes every page's link."""

    def __init__(
        self,
        feed: ViewFeed,
        port: int = 0,
        *,
        token: str | None = None,
        heartbeat_s: float = 5.0,
        send_buffer: int = 16384,
        lan: bool = False,
    ) -> None:
        if not have_aiohttp():
            raise ViewUsageError(MISSING_AIOHTTP)
        self.feed = feed
        self.port = port
        self.token = token or secrets.token_urlsafe(24)
        self.heartbeat_s = heartbeat_s
        #: bytes a page's link may hold unsent (our write buffer, the socket's): beyond it the
        #: page's sender waits and its queue drops old updates, so a slow page gets fresh data, not a backlog
        self.send_buffer = send_buffer
        self._runner: AppRunner | None = None
        self._sockets: set = set()
        self._html = page_html()
        self.lan = lan
        #: where it listens: this computer only, or every interface (--view-lan)
        self.bind = LAN_BIND if lan else VIEW_HOST

    @property
    def url(self) -> str:
        host = lan_address() if self.lan else VIEW_HOST
        return f"http://{host}:{self.port}/?t={self.token}"

    def _allowed(self, request) -> bool:
        return secrets.compare_digest(request.query.get("t", "").encode(), self.token.encode())

    def app(self):
        from aiohttp import web

        @web.middleware
        async def token_check(request, handler):
            if not self._allowed(request):
                return web.Response(
                    status=403,
                    text="403: this page needs the link printed by spinemon live (with its ?t= token)\n",
                )
            return await handler(request)

        app = web.Application(middlewares=[token_check])
        app.router.add_get("/", self._page)
        app.router.add_get("/ws", self._ws)
        return app

    async def _page(self, request):
        from aiohttp import web

        csp = (
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' "
            + f"ws://{request.host}"
        )
        return web.Response(
            text=self._html,
            content_type="text/html",
            headers={
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": csp,
            },
        )

    async def _ws(self, request):
        from aiohttp import web

        ws = web.WebSocketResponse(
            heartbeat=self.heartbeat_s, timeout=1.0, compress=False, writer_limit=self.send_buffer
        )
        await ws.prepare(request)
        if request.transport is not None:
            request.transport.set_write_buffer_limits(high=self.send_buffer)
            sock = request.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        sub = self.feed.subscribe()
        self._sockets.add(ws)

        async def send() -> None:
            while True:
                await ws.send_str(await sub.get())

        sender = asyncio.get_running_loop().create_task(send())
        try:
            async for _ in ws:  # the page sends nothing; this ends when it goes away
                pass
        finally:
            sender.cancel()
            self.feed.unsubscribe(sub)
            self._sockets.discard(ws)
        return ws

    async def start(self) -> str:
        from aiohttp import web

        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        self._runner = runner
        await runner.setup()
        site = web.TCPSite(runner, self.bind, self.port)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            self._runner = None
            raise ViewUsageError(
                f"--view-port {self.port}: cannot listen on {self.bind}:{self.port} ({os.strerror(e.errno) if e.errno else e}); choose another port or leave --view-port out"
            ) from None
        self.port = runner.addresses[0][1]
        return self.url

    async def stop(self) -> None:
        if self._runner is None:
            return
        self.feed.end()
        await asyncio.sleep(0.05)  # let the senders pass the "end" on
        for ws in list(self._sockets):
            try:  # a page that stopped reading cannot hold the end of the session up
                await asyncio.wait_for(ws.close(), 1.0)
            except (TimeoutError, ConnectionError):
                pass
        await self._runner.cleanup()
        self._runner = None
