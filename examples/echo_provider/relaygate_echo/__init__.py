"""An example relaygate provider plugin: the ``echo`` provider answers with the last user text."""

from relaygate_echo.provider import EchoProvider

__all__ = ["EchoProvider"]
