"""The one exception a user's mistake raises: commands print its message as one line and exit with code 2."""

from __future__ import annotations

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Input or configuration that cannot be used as given. The message is one line naming the file or key and
    what to do; it never holds a patient's name or raw ID. Commands print it without a traceback (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))  # always one line, whatever was interpolated into it


class ConfigError(UserError, ValueError):
    """A configuration that cannot run; the message says what to set."""
