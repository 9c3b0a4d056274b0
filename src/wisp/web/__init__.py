"""Web functions: OpenWhisk web actions at ``/api/v1/web/...``."""
