"""Serving a loaded model: the engine and the HTTP app."""
