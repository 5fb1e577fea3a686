from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"

    def ready(self):
        # Register the tasks in every process: services enqueue them by name (enqueue.py), and a name resolves to
        # the task (honouring eager mode) only once its module is imported. Imported here, as models must be
        # loaded first.
        from workflows import tasks  # noqa: F401
