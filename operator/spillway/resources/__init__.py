"""Pure builders: the Kubernetes objects a ScalableService needs, as plain dicts. No I/O."""
