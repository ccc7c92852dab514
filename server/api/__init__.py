"""The REST API under /api/v1: one module per resource, each exporting ROUTES; the API keys and the
OpenAPI document built from the same routes. Imports only the core of `server` (ARCHITECTURE.md)."""
