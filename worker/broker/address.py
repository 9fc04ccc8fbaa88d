"""Which broker a process talks to: the configured ``broker_url``, or the embedded one.

The one-box embedded broker (worker/broker/embedded.py) listens on a unix socket in the
state directory; Flower, the metrics endpoint and `kamado status` on one box find it
there. The scheduler never uses it: recorders submit to a shared broker.
"""

from __future__ import annotations

from worker.broker.embedded import MAX_SOCKET_PATH
from worker.errors import ConfigError
from worker.settings.model import Settings

__all__ = ["broker_url", "embedded_broker_url"]


def embedded_broker_url(settings: Settings) -> str:
    """The unix socket URL the one-box embedded broker listens on in this state_dir."""
    path = (settings.state_dir / "broker" / "valkey.sock").absolute()
    if len(str(path)) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"state_dir {settings.state_dir} is too deep for the embedded broker's socket; "
            "other kamado processes cannot find it: use a shorter state_dir or configure "
            "broker_url"
        )
    return f"redis+socket://{path}"


def broker_url(settings: Settings, *, embedded: bool) -> str:
    """The configured broker URL; without one, the embedded broker's, or a ConfigError.

    ``embedded=False`` is for the scheduler, which submits to a shared broker only.
    """
    if settings.broker_url is not None:
        return settings.broker_url.get_secret_value()
    if embedded:
        return embedded_broker_url(settings)
    raise ConfigError(
        "no broker configured: set broker_url in the config file or KAMADO_BROKER_URL "
        "(the scheduler submits to a shared broker, not an embedded one)"
    )
