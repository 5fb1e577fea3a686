"""Fixtures shared by every app's tests: clean stores per test, users, API clients."""

pytest_plugins = ["tests.fixtures", "tests.web_app_helpers"]
