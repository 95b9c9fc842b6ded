from django.apps import AppConfig


class ReverieConfig(AppConfig):
    name = "webapp"
    label = "reverie"
    verbose_name = "Reverie"

    def ready(self):
        from webapp import checks  # noqa: F401  (registers system checks)
