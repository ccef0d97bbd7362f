"""Routers of the reference API, one module per resource."""
