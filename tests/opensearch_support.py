"""Fixtures and helpers for the OpenSearch tests (osmem-server, started by its pytest plugin)."""

from __future__ import annotations

import socket
import socketserver
import threading

import pytest

from reports import outbox
from reports.opensearch_config import OpenSearchConfig, _templates_installed, get_client

PREFIX = "t"


def closed_port_url() -> str:
    """An address where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_config(url: str, **overrides) -> OpenSearchConfig:
    return OpenSearchConfig(url=url, prefix=PREFIX, timeout=5.0, retries=0, **overrides)


def reset_process_state() -> None:
    _templates_installed.clear()
    outbox._down_until.clear()
    get_client.cache_clear()


@pytest.fixture
def clean_state():
    reset_process_state()
    yield
    reset_process_state()


@pytest.fixture
def os_config(osmem_url, clean_state) -> OpenSearchConfig:
    return make_config(osmem_url)


@pytest.fixture
def os_settings(settings, os_config):
    """Django settings pointing at the test's osmem clone."""
    settings.OPENSEARCH_URL = os_config.url
    settings.OPENSEARCH_INDEX_PREFIX = PREFIX
    settings.OPENSEARCH_TIMEOUT = os_config.timeout
    settings.OPENSEARCH_RETRIES = os_config.retries
    settings.OPENSEARCH_WMSHISTORY_SOURCE = ""
    return settings


def count(config: OpenSearchConfig, family: str, **terms) -> int:
    client = get_client(config)
    client.indices.refresh(index=config.alias(family), ignore_unavailable=True, allow_no_indices=True)
    query = {"bool": {"filter": [{"term": {k: v}} for k, v in terms.items()]}}
    return client.count(index=config.alias(family), body={"query": query}, ignore_unavailable=True,
                        allow_no_indices=True)["count"]


class SwitchableProxy:
    """A TCP forwarder in front of OpenSearch that can go down and come back on the same port.

    Down means the port refuses connections and open connections are cut, as when the server
    stops; the data behind it stays, as when a real cluster comes back.
    """

    def __init__(self, target_url: str):
        host, port = target_url.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.port = 0
        self.server = None
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SwitchableProxy:
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                upstream = socket.create_connection(proxy.target)
                with proxy.lock:
                    proxy.sockets.update((self.request, upstream))
                pump = threading.Thread(target=_pipe, args=(upstream, self.request), daemon=True)
                pump.start()
                _pipe(self.request, upstream)
                pump.join(5)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server = None
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets.clear()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
