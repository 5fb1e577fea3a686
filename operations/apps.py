from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self):
        from layra.metrics import gauge_source_add
        from operations.stats import ingestion_job_gauges

        gauge_source_add(ingestion_job_gauges)
