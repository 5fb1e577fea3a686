from django.apps import AppConfig


class LayraConfig(AppConfig):
    name = "layra"
    verbose_name = "LAYRA platform"

    def ready(self):
        from layra import checks, mongo  # noqa: F401 - checks registers the system checks

        mongo.connect()  # connect=False: no socket until the first query, fork safe

        from layra.metrics import register_collectors

        register_collectors()
