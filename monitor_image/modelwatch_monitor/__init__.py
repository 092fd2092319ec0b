"""modelwatch monitor: drift checks, retraining, the model registry and the model server."""

__version__ = "0.1.0"
