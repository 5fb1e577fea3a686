"""Django settings: the platform's (core.py), then each app's (apps.py), which extends some of core's values, so
the order matters. Every value comes from the environment with an embedded default; with nothing set the project
runs on one machine."""

# isort: off
from layra.settings.core import *  # noqa: F403
from layra.settings.apps import *  # noqa: F403
# isort: on
