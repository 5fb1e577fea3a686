"""Operator tooling that spans apps (the top layer): reindex, vector migration, cleanup, consistency checks,
Mongo indexes, backup/restore, stats, the Mongo admin, warm-up and the embedded stack's launcher.

Commands (operations/management/commands) and beat tasks (operations/tasks.py) are thin wrappers over these.
It calls the apps' services and selectors; no app imports it.
"""
