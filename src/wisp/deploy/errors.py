"""Errors raised while reading, building, planning or applying a project.

DeployError            anything that stops a deploy; the message is shown as is
└── ProjectError       the project on disk is wrong (names the file and the key)
"""

from __future__ import annotations


class DeployError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProjectError(DeployError):
    pass
