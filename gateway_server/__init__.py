"""The bundled HTTP server: ``create_app()`` for ASGI hosts, ``relaygate serve`` from the shell."""

from gateway_server.app import create_app
from gateway_server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
