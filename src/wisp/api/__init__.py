"""The HTTP API: OpenWhisk's REST surface over the platform's core."""

from wisp.api.app import create_app

__all__ = ["create_app"]
