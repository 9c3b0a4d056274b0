"""Server-side builds: dependencies and compiled functions, built where they will run."""

from wisp.builds.builder import Builder, BuildFailed, BuildResult

__all__ = ["BuildFailed", "BuildResult", "Builder"]
