from django.apps import AppConfig


class ClinicsConfig(AppConfig):
    name = "clinics"

    def ready(self) -> None:
        from clinics import languages  # noqa: F401 - connects the login signal
