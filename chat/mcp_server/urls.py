from django.urls import path

from chat.mcp_server.bridge import mcp_endpoint

# /mcp and /mcp/ (MCP clients use the URL they are given); anything else under /mcp is the JSON 404.
urlpatterns = [path("mcp", mcp_endpoint, name="mcp"), path("mcp/", mcp_endpoint, name="mcp-slash")]
