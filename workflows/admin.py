# Workflows, runs and chatflows live in MongoDB (workflows/documents.py); the Django admin covers ORM models only.
