"""RUN: a container of the lifecycle engine, run in the foreground from the stage's
image (the same run path, monitor and fakeroot as `rootless run`), its output streamed,
then committed as the step's layer and removed.

The command runs with the stage's environment plus the build args in scope (not kept
in the image), its SHELL for the shell form, no ENTRYPOINT, as root unless USER says
otherwise. `--mount`: type=cache (a directory of the store kept between builds, by id),
bind (from the context, read-only unless rw -- then a copy; with from=STAGE|IMAGE a
copy of a path in that stage's or image's files), tmpfs, secret (the file given with
--secret, read-only at /run/secrets/ID); none of them ends up in the layer.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import sys

from rootless.engine.build_context import BuildError


def run_step(builder, state, step, key: str) -> str:
    from rootless.engine.build import add_history, next_config
    from rootless.engine.build_steps import env_dict
    from rootless.engine.run import RunOptions

    if state.image_id is None:
        raise builder._error(step, "RUN in a stage with no files (FROM scratch): there is "
                             "no shell to run it")
    argv = _argv(state.config, step)
    image_env = env_dict(state.config)
    env = tuple(f"{k}={v}" for k, v in state.args.items() if k not in image_env)
    mounts, tmpfs, cleanup = _mounts(builder, state, step)
    name = "rootless-build-" + os.urandom(6).hex()
    opts = RunOptions(image=state.image_id, command=tuple(argv), entrypoint="", env=env,
                      name=name, network=_network(step.network) or builder.opts.network,
                      mounts=tuple(mounts), tmpfs=tuple(tmpfs), pull="never",
                      sig_proxy=False)  # Ctrl-C stops the build, as docker build
    try:
        code = _run(builder, opts, name)
        if code != 0:
            raise builder._error(step, f"the command '{' '.join(argv)}' returned a "
                                 f"non-zero code: {code}")
        config = next_config(state.config)
        args = "".join(f"|{len(env)} " + " ".join(env) + " " if env else "")
        add_history(config, args + " ".join(argv), empty=False)
        return _commit(builder, name, state, config, key)
    finally:
        _remove(builder.store, name)
        for path in cleanup:
            from rootless.engine.containers import remove_tree

            remove_tree(path)


def _network(value: str | None) -> str | None:
    """RUN --network=default|none|host: `default` is the build's own."""
    return None if value in (None, "default") else value


def _argv(config: dict, step) -> list[str]:
    """The shell form with heredocs runs as a script: `RUN <<EOF` alone runs the body,
    `RUN cmd <<EOF` hands the shell the heredoc as it was written (the shell reads
    it as its own here-document)."""
    from rootless.engine.build_steps import command_argv, shell_of

    docs = step.raw.heredocs
    if not (step.shell_form and docs):
        return command_argv(config, step.command, step.shell_form)
    line = step.command[0].strip()
    if len(docs) == 1 and re.fullmatch(r"<<-?([\"']?)[^\s\"']+\1", line):
        return [*shell_of(config), docs[0].body]
    script = line + "\n" + "".join(
        doc.body + ("" if doc.body.endswith("\n") or not doc.body else "\n") + doc.name + "\n"
        for doc in docs)
    return [*shell_of(config), script]


def _run(builder, opts, name: str) -> int:
    from rootless.engine.run import container_run

    out = builder.out
    print(f" ---> Running in {name[15:27]}", file=out, flush=True)
    if not builder.opts.quiet:
        return container_run(builder.store, opts, interruptible=True)
    # -q: the step's output is kept, and shown only if it fails
    import tempfile

    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            code = container_run(builder.store, opts, interruptible=True)
        finally:
            sys.stdout.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        if code != 0:
            log.seek(0)
            sys.stderr.buffer.write(log.read()[-65536:])
            sys.stderr.flush()
    return code


def _commit(builder, name: str, state, config: dict, key: str) -> str:
    from rootless.engine.commit import _write_layer
    from rootless.engine.container_fs import StoppedContainer

    store = builder.store
    layer = store.temp_path("build-layer")
    try:
        _write_layer(StoppedContainer(store, name, "commit"), layer)
        print(f"Removing intermediate container {name[15:27]}", file=builder.out)
        return builder._store(state, config, layer, key)
    finally:
        layer.unlink(missing_ok=True)


def _remove(store, name: str) -> None:
    from rootless.engine.lifecycle import containers_remove
    from rootless.errors import NotFoundError

    try:
        containers_remove(store, [name], force=True, volumes=True)
    except NotFoundError:
        pass


# ---- --mount ----

def _mounts(builder, state, step) -> tuple[list[str], list[str], list[str]]:
    """(--mount values for the run, --tmpfs values, temporary copies to remove)."""
    from rootless.build.expand import ExpandError, expand_word
    from rootless.build.mounts import MountError, parse_mount

    env = state.env()
    workdir = state.config.get("config", {}).get("WorkingDir") or "/"
    mounts: list[str] = []
    tmpfs: list[str] = []
    cleanup: list[str] = []
    for text in step.mounts:
        try:
            m = parse_mount(text, lambda word: expand_word(word, env, builder._escape()))
        except (MountError, ExpandError) as e:
            raise builder._error(step, str(e)) from None
        target = posixpath.normpath(posixpath.join(workdir, m.target)) if m.target else ""
        if target == "/":
            raise builder._error(step, 'invalid mount target "/"')
        m = m._replace(target=target)
        if m.type == "cache":
            mounts.append(_bind(_cache_dir(builder.store, m.id or m.target), m.target, False))
        elif m.type == "tmpfs":
            tmpfs.append(m.target)
        elif m.type == "secret":
            mounts.append(_secret(builder, step, m))
        elif m.type == "bind":
            mounts.append(_context_bind(builder, step, m, cleanup))
        else:
            raise builder._error(step, f"RUN --mount type={m.type} is not supported")
    return mounts, tmpfs, cleanup


def mount_sources(builder, state, step) -> list[str]:
    """What a RUN's binds show, for its cache key (BuildKit keys a mount on what it
    holds): the image of each from= stage or image, the digest of each context path.
    A mount that is refused is left out here: _mounts names the reason."""
    from rootless.build.expand import ExpandError, expand_word
    from rootless.build.mounts import MountError, parse_mount

    env = state.env()
    ctx = builder.source.context
    found: list[str] = []
    for text in step.mounts:
        try:
            m = parse_mount(text, lambda word: expand_word(word, env, builder._escape()))
        except (MountError, ExpandError):
            continue
        if m.type != "bind":
            continue
        if m.from_:
            found.append(builder.stage_image(m.from_, step))
            continue
        try:
            for sel in ctx.select(m.source or ".", allow_wildcards=False):
                found.append(ctx.digest(ctx.entries(sel, "")))
        except (BuildError, OSError):
            continue
    return found


def _bind(source: str, target: str, readonly: bool) -> str:
    text = f"type=bind,source={source},destination={target}"
    return text + ",readonly" if readonly else text


def _cache_dir(store, ident: str) -> str:
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    path = os.path.join(store.dir, "build-cache-mounts", digest)
    os.makedirs(path, mode=0o755, exist_ok=True)
    return path


def _secret(builder, step, m) -> str:
    ident = m.id or os.path.basename(m.target or "")
    source = builder.secrets.get(ident)
    if source is None:
        if m.required:
            raise builder._error(step, f"secret {ident} not found (give it with --secret "
                                 f"id={ident},src=PATH)")
        return _bind(os.devnull, m.target or f"/run/secrets/{ident}", True)
    if source.startswith("env:"):
        raise builder._error(step, "secrets from the environment are not supported: "
                             "give src=PATH")
    if not os.path.isfile(source):
        raise BuildError(f"secret {ident}: {source} is not a file")
    return _bind(os.path.abspath(source), m.target or f"/run/secrets/{ident}", True)


def _context_bind(builder, step, m, cleanup: list[str]) -> str:
    """A bind of the context (or a path in it), resolved inside the context; rw gets a
    copy, since docker's rw bind never writes back."""
    from rootless.engine.build_context import _clean

    if m.from_:
        return _stage_bind(builder, step, m, cleanup)
    rel = _clean(m.source or ".")
    if rel is None:
        raise builder._error(step, f"forbidden path outside the build context: {m.source}")
    root = os.path.realpath(builder.source.context.root)
    source = os.path.realpath(os.path.join(root, rel))
    if source != root and not source.startswith(root + "/"):
        raise builder._error(step, f"forbidden path outside the build context: {m.source}")
    if not os.path.exists(source):
        raise builder._error(step, f"{m.source}: not found in the build context")
    if m.readonly:
        return _bind(source, m.target, True)
    import shutil

    copy = str(builder.store.temp_path("build-bind"))
    if os.path.isdir(source):
        shutil.copytree(source, copy, symlinks=True)
    else:
        shutil.copy2(source, copy)
    cleanup.append(copy)
    return _bind(copy, m.target, False)


def _stage_bind(builder, step, m, cleanup: list[str]) -> str:
    """from=STAGE|IMAGE: the source path (the root by default) of that stage's or
    image's files, read out through `cp`'s helper of a created container (resolved
    inside that image, as COPY --from reads it) and unpacked into this command's tmp/
    by `cp`'s extractor (hostile input: nothing lands outside, no device is made, setid
    bits are dropped). Read-only unless rw; an rw copy is discarded after the step, as
    BuildKit discards what a RUN writes to a bind. The files are the user's (the
    container's root), not the image's owners."""
    from rootless.engine.build_copy import tar_from
    from rootless.engine.build_files import _created, _id_of

    image_id = builder.stage_image(m.from_, step)
    source = posixpath.normpath(posixpath.join("/", m.source or "/"))
    store = builder.store
    tar_path = str(store.temp_path("build-from"))
    copy = str(store.temp_path("build-bind"))
    cleanup += [tar_path, copy]
    name = _created(builder, image_id)
    try:
        is_dir = tar_from(store, _id_of(store, name), source, tar_path)
    except BuildError as e:
        raise builder._error(step, f"--mount from={m.from_}: {e}") from None
    finally:
        _remove(store, name)
    os.mkdir(copy, 0o755)
    _unpack(tar_path, copy, f"{source} of {m.from_}")
    os.unlink(tar_path)
    inside = copy if is_dir else os.path.join(copy, posixpath.basename(source))
    return _bind(inside, m.target, m.readonly)


def _unpack(tar_path: str, into: str, shown: str) -> None:
    from rootless.engine.cp_archive import CopyError, Extractor

    fd = os.open(into, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with open(tar_path, "rb") as stream:
            Extractor(fd, shown, host=True).run(stream)
    except CopyError as e:
        raise BuildError(str(e)) from None
    finally:
        os.close(fd)
