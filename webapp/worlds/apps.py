from django.apps import AppConfig


class WorldsConfig(AppConfig):
    name = "webapp.worlds"
    label = "worlds"
