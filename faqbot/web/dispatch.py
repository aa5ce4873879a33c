"""`PrefixDispatcher`: the API's requests go to the API, every other request to Chainlit."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class PrefixDispatcher:
    """ASGI middleware: requests whose path is `prefix` or under it go to `api`, all others to
    `app`. Put in front of Chainlit's app, it keeps /api away from Chainlit's routes (the SPA
    catch-all), from its CORS middleware (the API applies its own CORS policy) and from its gzip
    (server-sent events stream unbuffered). Like Starlette's Mount it extends `root_path`, so the
    API sees paths relative to `prefix` and serves its docs and schema at `prefix/...`.
    """

    def __init__(self, app: ASGIApp, *, api: ASGIApp, prefix: str = "/api") -> None:
        self.app = app
        self.api = api
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            root = scope.get("root_path", "")
            path: str = scope["path"]
            relative = path[len(root) :] if root and path.startswith(root) else path
            if relative == self.prefix or relative.startswith(self.prefix + "/"):
                child = {
                    **scope,
                    "app_root_path": scope.get("app_root_path", root),
                    "root_path": root + self.prefix,
                }
                await self.api(child, receive, send)
                return
        await self.app(scope, receive, send)
