"""One ASGI application for HTTP and websockets, served by uvicorn."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oversight.settings")
django_asgi_app = get_asgi_application()  # sets Django up before the imports below

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from oversight.gateway.fastlane import DecisionFastLane  # noqa: E402
from oversight.live.lifespan import lifespan  # noqa: E402
from oversight.live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # POST /api/v1/actions takes the decision fast lane; everything else is Django's.
        "http": DecisionFastLane(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
        # Binds the loop live fragments are coalesced on; sends the last window on shutdown.
        "lifespan": lifespan,
    }
)
