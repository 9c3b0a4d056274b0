"""The invocation lifecycle: from a resolved action and parameters to an activation record."""

from wisp.invoker.base import Invocation, Invoker, Target

__all__ = ["Invocation", "Invoker", "Target"]
