"""Every app's Mongo documents, for the operator admin and ensure_indexes."""

from importlib import import_module

# (app label, document class path)
DOCUMENTS = (
    "knowledge.documents.KnowledgeBase",
    "knowledge.documents.File",
    "chat.documents.ModelConfig",
    "chat.documents.Conversation",
    "workflows.documents.Workflow",
    "workflows.documents.CustomNodes",
    "workflows.documents.WorkflowRun",
    "workflows.documents.Chatflow",
)


def documents() -> list[type]:
    out = []
    for path in DOCUMENTS:
        module, name = path.rsplit(".", 1)
        out.append(getattr(import_module(module), name))
    return out
