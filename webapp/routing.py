from django.urls import path

from webapp.play.consumers import PlayConsumer
from webapp.queue.consumers import QueueConsumer

websocket_urlpatterns = [
    path("ws/queue/<uuid:ticket_id>/", QueueConsumer.as_asgi()),
    path("ws/play/<uuid:session_id>/", PlayConsumer.as_asgi()),
]
