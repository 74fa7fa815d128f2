"""One error hierarchy for every layer; the front ends map it to Docker's exit codes.

Messages are lower-case, name the object or path concerned, and say what to do.
"""

from __future__ import annotations

# Docker's exit codes for failures that are not the container's own.
EXIT_ENGINE = 125  # the engine failed (bad flag, no such image, kernel refused)
EXIT_CANNOT_INVOKE = 126  # the command exists but cannot be executed
EXIT_NOT_FOUND = 127  # the command was not found in the container


class RootlessError(Exception):
    """Base of every error a user may see; str() is the one-line message."""

    exit_code = EXIT_ENGINE


class KernelError(RootlessError):
    """A syscall failed in a way the caller cannot recover from."""


class RuntimeSetupError(RootlessError):
    """A step of container set-up (namespaces, mounts, pivot, ...) failed."""


class CannotInvokeError(RootlessError):
    exit_code = EXIT_CANNOT_INVOKE


class CommandNotFoundError(RootlessError):
    exit_code = EXIT_NOT_FOUND


class StoreError(RootlessError):
    """The local store is missing, locked, or inconsistent."""


class ImageError(RootlessError):
    """An image, reference, manifest, archive or layer is invalid or unknown."""


class NotFoundError(RootlessError):
    """A named object (image, container, volume) does not exist."""


class UnsafePathError(RootlessError):
    """A path would leave the root it must stay inside."""


class UsageError(RootlessError):
    """Bad command-line input that the parser itself could not catch."""
