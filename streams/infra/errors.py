"""The one error type of the local stack: a message plus what the user should do about it."""

from __future__ import annotations


class InfraError(Exception):
    """A local-stack operation failed in a way the user can act on."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  -> {self.hint}" if self.hint else self.message
