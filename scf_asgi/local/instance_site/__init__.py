"""The directory `scf-asgi local` puts first on an instance's PYTHONPATH (see sitecustomize)."""
