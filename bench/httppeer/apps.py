from django.apps import AppConfig


class HttpPeerConfig(AppConfig):
    name = "bench.httppeer"
    label = "httppeer"
    default_auto_field = "django.db.models.BigAutoField"
