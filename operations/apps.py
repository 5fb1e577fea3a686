from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self):
        from layra.metrics import gauge_source_add
        from operations.stats import ingestion_job_gauges

        gauge_source_add(ingestion_job_gauges)
        # Tasks lower layers enqueue by name (accounts: the account-deletion cascade) must be registered in every
        # process, so that an eager run (tests, no broker) resolves the name to the task.
        import operations.tasks  # noqa: F401
