"""Server-side builds: dependencies and compiled functions, built where they will run."""

from wisp.builds.builder import BuildFailed, Builder, BuildResult

__all__ = ["BuildFailed", "BuildResult", "Builder"]
