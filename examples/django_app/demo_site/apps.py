from django.apps import AppConfig


class DemoSiteConfig(AppConfig):
    name = "demo_site"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from demo_site import signals  # noqa: F401 (connects the logout message)
