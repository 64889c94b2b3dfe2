"""Kubernetes I/O: the only package that imports the Kubernetes client."""
