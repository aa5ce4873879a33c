"""The fake OpenAI server answers without Nagle's algorithm, as a real server would.

Its listening socket used to be created with proto 0, so asyncio left Nagle on for the
connections it accepted: every reply written in two pieces waited for the client's delayed ACK,
about 40 ms per call, and benchmarks counted those 40 ms as faqbot's own overhead (issue 11).
"""

from __future__ import annotations

import socket
from typing import Any

import httpx


def test_accepted_connections_have_tcp_nodelay(fake_openai: Any) -> None:
    server = fake_openai._server
    with httpx.Client() as client:
        assert client.get(f"{fake_openai.base_url.removesuffix('/v1')}/_fake/stats").is_success
        sockets = [
            proto.transport.get_extra_info("socket") for proto in server.server_state.connections
        ]
        assert sockets, "the request's connection is still open"
        for sock in sockets:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
