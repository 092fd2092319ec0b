"""Serving: the model server and its prediction log."""
