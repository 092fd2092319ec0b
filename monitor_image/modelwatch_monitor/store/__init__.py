"""Storage: the model registry, data I/O, the feature schema and pickle compatibility."""
