"""Socket addresses: one live feed per board."""

from django.urls import path

from dashboard.consumers import BoardConsumer

websocket_urlpatterns = [
    path("ws/boards/<slug:slug>/", BoardConsumer.as_asgi()),
]
