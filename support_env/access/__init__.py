"""Ways in from outside: the typed client, the MCP tools, a local server process, and the start-up preload."""
