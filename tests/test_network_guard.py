"""The conftest guard must refuse non-loopback hosts and allow loopback ones."""

import socket

import pytest


def test_non_loopback_connect_is_refused() -> None:
    with socket.socket() as s, pytest.raises(ConnectionRefusedError, match="loopback"):
        s.connect(("93.184.216.34", 80))


def test_non_loopback_name_is_not_resolved() -> None:
    with pytest.raises(socket.gaierror, match="loopback"):
        socket.getaddrinfo("api.openai.com", 443)


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket() as client:
            client.connect(server.getsockname())
