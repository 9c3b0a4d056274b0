"""The ``wisp`` command, modelled on ``doctl serverless``."""
