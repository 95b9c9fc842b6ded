from django.urls import path

from webapp.worlds import views

urlpatterns = [
    path("", views.lobby, name="worlds-lobby"),
    path("worlds/upload/", views.upload, name="worlds-upload"),
    path("worlds/<uuid:world_id>/remove/", views.remove, name="worlds-remove"),
    path("worlds/<uuid:world_id>/thumbnail.png", views.thumbnail, name="worlds-thumbnail"),
]
