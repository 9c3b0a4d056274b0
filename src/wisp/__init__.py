"""Wisp: a self-hosted serverless functions platform speaking the OpenWhisk API."""

__version__ = "0.1.0"
