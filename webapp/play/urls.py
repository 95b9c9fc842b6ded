from django.urls import path

from webapp.play import views

urlpatterns = [
    path("<uuid:session_id>/", views.session_page, name="play-session"),
    path("<uuid:session_id>/leave/", views.leave, name="play-leave"),
]
