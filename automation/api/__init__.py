"""The automation API: one module per resource (``triggers``, ``alerts``), wired in ``urls``."""
