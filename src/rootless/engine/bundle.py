"""`rootless bundle IMAGE DIR`: an OCI runtime bundle (rootfs/ + config.json) from a local
image, as `umoci unpack` or podman's storage would give one, for the runtimes that take
bundles: `rootless-oci`, crun, runc, and Slurm's `srun --container`.

The rootfs is a plain copy of the image's layers (whiteouts applied), with the owners
this user's id mode stores: with a subordinate range the true owners mapped into it, so
the copy is made in the storage namespace (kernel/storage_ns.py), where the files are
readable and chown works; with one id, the user's own files. config.json is what
`rootless run IMAGE` would run, minus what only a store container has (overlay layers,
network files, the monitor): the image's command, environment, working directory and
user, docker's default capabilities and seccomp profile, the host's network (as HPC jobs
want it) and no id maps, so the runtime maps the ids of whoever runs it.
"""

from __future__ import annotations

import json
import os

from rootless.errors import UsageError


def bundle_write(store, image_name: str, directory: str) -> str:
    """Write the bundle of `image_name` into `directory` (made, or an empty one);
    return its absolute path."""
    from rootless.engine.images import image_resolve

    directory = os.path.abspath(directory)
    _make_empty_dir(directory)
    with store.lock(shared=True):  # `rmi` cannot delete the layers while we copy them
        image = image_resolve(store, image_name)
        rootfs = os.path.join(directory, "rootfs")
        os.mkdir(rootfs, 0o755)
        _copy_layers(image.layer_dirs, rootfs)
    spec = bundle_spec(image)
    tmp = os.path.join(directory, ".config.json.tmp")
    with open(tmp, "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    os.rename(tmp, os.path.join(directory, "config.json"))
    return directory


def _make_empty_dir(directory: str) -> None:
    try:
        os.mkdir(directory, 0o755)
    except FileExistsError:
        if not os.path.isdir(directory) or os.path.islink(directory):
            raise UsageError(f"bundle directory {directory}: exists and is not a "
                             "directory") from None
        if os.listdir(directory):
            raise UsageError(f"bundle directory {directory}: not empty (give a new or "
                             "empty directory)") from None
    except OSError as e:
        raise UsageError(f"bundle directory {directory}: {e.strerror.lower()}") from e


def _copy_layers(layer_dirs: list[str], rootfs: str) -> None:
    from rootless.fs.rootfs import copy_layer
    from rootless.kernel.idmap import detect_maps

    def copy_all(layers: list[str], dest: str) -> None:
        for layer in layers:
            copy_layer(layer, dest)

    if detect_maps().use_helpers:  # owners in the subordinate range: copy them there
        from rootless.kernel.storage_ns import call_as_root

        call_as_root(copy_all, layer_dirs, rootfs)
    else:
        copy_all(layer_dirs, rootfs)


def bundle_spec(image) -> dict:
    """config.json for the image: its command, env, cwd and user, as `run` would."""
    from rootless.engine.seccomp import profile_load, profile_to_oci
    from rootless.engine.spec import (DEFAULT_PATH, ProcessConfig, RootfsConfig,
                                      SecurityConfig, SpecOptions, build_spec)
    from rootless.engine.users import resolve_user
    from rootless.runtime.caps import DOCKER_DEFAULT

    config = image.config.get("config") or {}
    args = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not args:
        args = ["sh"]
    user = resolve_user(image.layer_dirs, config.get("User") or "0", ())
    env: dict[str, str] = {"PATH": DEFAULT_PATH}
    for item in config.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    env.setdefault("HOME", user.home)
    process = ProcessConfig(args=args, env=[f"{k}={v}" for k, v in env.items()],
                            cwd=config.get("WorkingDir") or "/", uid=user.uid,
                            gid=user.gid, additional_gids=user.additional_gids,
                            capabilities=DOCKER_DEFAULT)
    seccomp = profile_to_oci(profile_load("builtin"), DOCKER_DEFAULT)
    spec = build_spec(SpecOptions(
        process=process, rootfs=RootfsConfig(path="rootfs"), hostname="",
        network="host", security=SecurityConfig(seccomp, "builtin")))
    spec.pop("hostname", None)
    spec["annotations"] = {"org.opencontainers.image.ref.name": image.names[0]
                           if image.names else image.id}
    return spec
