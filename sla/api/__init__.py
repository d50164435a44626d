"""The SLA app's HTTP API under ``/api/workflow/``: one module per resource, routes in ``urls``."""
