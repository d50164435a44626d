from django.apps import AppConfig


class PeerAppConfig(AppConfig):
    name = "bench.peerapp"
    label = "peerapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers  # noqa: F401 — connects the post_transition receiver
