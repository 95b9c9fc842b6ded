from django.urls import path

from webapp.worlds import views

urlpatterns = [
    path("", views.lobby, name="worlds-lobby"),
    path("worlds/<uuid:world_id>/thumbnail.png", views.thumbnail, name="worlds-thumbnail"),
]
