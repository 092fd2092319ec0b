"""modelwatch operator: reconciles ModelMonitor resources with kopf."""

__version__ = "0.1.0"
