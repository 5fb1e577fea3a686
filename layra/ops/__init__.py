"""Operator services: reindex, cleanup, consistency, indexes, backup/restore, stuck jobs, stats.

Commands (layra/management/commands) and beat tasks (layra/tasks.py) are thin wrappers over these.
"""
