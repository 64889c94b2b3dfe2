"""Reading signals from Prometheus."""
