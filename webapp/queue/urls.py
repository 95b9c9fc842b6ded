from django.urls import path

from webapp.queue import views

urlpatterns = [
    path("join/<slug:slug>/", views.join, name="queue-join"),
    path("rejoin/<uuid:session_id>/", views.rejoin_front, name="queue-rejoin"),
    path("<uuid:ticket_id>/", views.ticket_page, name="queue-ticket"),
    path("<uuid:ticket_id>/leave/", views.leave, name="queue-leave"),
    path("<uuid:ticket_id>/confirm/", views.confirm_offer, name="queue-confirm"),
]
