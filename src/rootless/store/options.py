"""Storage options: podman's storage.conf names, given as the global option
`--storage-opt KEY=VALUE` (repeatable) or in ROOTLESS_STORAGE_OPT (KEY=VALUE[,KEY=VALUE]),
which the flag extends, so that every process a command starts (layer workers) sees
them. Unknown keys and bad values are refused, naming them.

    ignore_chown_errors=true|false   with a subordinate range, an owner in a layer that
                                     the range cannot map becomes 0 (the user, container
                                     root) instead of refusing the layer; its setuid and
                                     setgid bits are dropped and the tar's values kept
                                     in user.containers.override_stat (image/layers.py)
    overlay=fuse|kernel              which overlay mounts a container's root: our FUSE
                                     overlay or the kernel's (else chosen per container,
                                     fs/rootfs.choose_strategy); ROOTLESS_OVERLAY too
"""

from __future__ import annotations

import os

from rootless.errors import UsageError

ENV = "ROOTLESS_STORAGE_OPT"
_BOOLS = {"true": True, "1": True, "false": False, "0": False}
_OVERLAYS = {"fuse": "fuse", "kernel": "kernel"}
KNOWN = {"ignore_chown_errors": _BOOLS, "overlay": _OVERLAYS}  # key -> its values


def parse_option(text: str) -> tuple[str, str]:
    """One KEY=VALUE, checked; podman's spellings (`overlay.` prefixes) are accepted."""
    key, sep, value = text.partition("=")
    key = key.strip().lower()
    if key.startswith(("overlay.", "vfs.")):
        key = key.split(".", 1)[1]
    value = value.strip().strip('"').lower()
    if not sep or key not in KNOWN:
        known = ", ".join(sorted(KNOWN))
        raise UsageError(f"unknown storage option {text!r} (want KEY=VALUE; known: {known})")
    if value not in KNOWN[key]:
        want = "true or false" if KNOWN[key] is _BOOLS else " or ".join(KNOWN[key])
        raise UsageError(f"storage option {key}: invalid value {value!r} (want {want})")
    return key, value


def storage_options() -> dict[str, str]:
    """The options in force: ROOTLESS_STORAGE_OPT, later ones winning."""
    options = {}
    for text in (os.environ.get(ENV) or "").split(","):
        if text.strip():
            key, value = parse_option(text)
            options[key] = value
    return options


def storage_flag(key: str) -> bool:
    return _BOOLS.get(storage_options().get(key, "false"), False)


def add_storage_option(text: str) -> None:
    """`--storage-opt KEY=VALUE`: checked, then added for this process and its children."""
    parse_option(text)
    current = os.environ.get(ENV)
    os.environ[ENV] = f"{current},{text}" if current else text
