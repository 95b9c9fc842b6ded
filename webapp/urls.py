from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "Reverie operations"
admin.site.site_title = "Reverie operations"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("webapp.accounts.urls")),
    path("queue/", include("webapp.queue.urls")),
    path("play/", include("webapp.play.urls")),
    path("", include("webapp.worlds.urls")),
]
