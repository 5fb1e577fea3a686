from django.urls import re_path

from chat.mcp_server.bridge import mcp_endpoint

# /mcp and /mcp/ (MCP clients use the URL they are given); anything else under /mcp is the JSON 404.
urlpatterns = [re_path(r"^/?$", mcp_endpoint, name="mcp")]
