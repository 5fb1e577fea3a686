import os

from layra.compute_threads import web_compute_threads_limit

web_compute_threads_limit()  # before torch or numpy start their thread pools

from django.core.wsgi import get_wsgi_application  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "layra.settings")
application = get_wsgi_application()
