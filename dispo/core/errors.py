"""User-facing errors: the CLI prints `error: <message>` on one line and exits with `code`."""


class DispoError(Exception):
    """An error caused by the user's input or environment, with a fix in its message."""

    code = 1

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class ConfigError(DispoError):
    """Bad override, unknown key or option, wrong type (exit code 2, like a usage error)."""

    code = 2


class RunDirError(DispoError):
    """A run directory that is missing, corrupt or already in use."""

    code = 2


class InputFileError(DispoError):
    """A user-supplied file (JSONL, npz) that is malformed; names the file, line and field."""

    code = 2
