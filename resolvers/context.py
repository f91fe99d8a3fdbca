"""What every resolver gets as `info.context`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from resolvers.loaders import Loaders

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.websockets import WebSocket

    from db.storage import Storage


@dataclass
class Context:
    storage: Storage
    request: Request | WebSocket
    response: Response | WebSocket | None
    base_url: str  # absolute URL of this server, for links it serves itself (avatars)
    loaders: Loaders = field(init=False)
    connection_params: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.storage)
