"""ASGI entry point: /ws/activity (group members) and /ws/ingest (the producer)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_fanout.settings")

import django

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from django_fanout.consumers import ActivityConsumer, IngestConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("ws/activity", ActivityConsumer.as_asgi()),
                path("ws/ingest", IngestConsumer.as_asgi()),
            ]
        )
    }
)
