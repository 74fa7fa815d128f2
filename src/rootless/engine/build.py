"""`rootless build`: a Dockerfile and a context -> an image, as `docker build` makes it.

The Dockerfile is parsed by build/ (lexer, expansion, stage graph); this module walks
the stages the target needs, in order, one instruction at a time. Each instruction
leaves an image in the store (engine/build_image.py): config-only instructions a new
config over the same layers (engine/build_steps.py), RUN the layer of a container of
the lifecycle engine (the run path, its monitor, commit; engine/build_run.py), COPY
and ADD the layer of a created container they wrote into (engine/build_files.py).

The cache (the build_cache table) maps a step's key -- its parent image, its text, the
build args it sees and the digests of the files it copies -- to the image it made; a
build whose steps all hit prints "Using cache" for each and ends on the same image id.
A failed step leaves its container removed and the cache of the steps before it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

from rootless.build import instructions as ins
from rootless.engine.build_context import BuildError
from rootless.errors import RootlessError
from rootless.records import record

DOCKERFILE_LIMIT = 8 << 20
# docker's predefined ARGs: usable with --build-arg without an ARG line
PREDEFINED_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
                   "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")


@record
class BuildOptions:
    context: str  # a directory, or "-" (a tar, or a lone Dockerfile, on stdin)
    dockerfile: str | None = None  # -f: a path (relative to the cwd), or "-" for stdin
    tags: tuple[str, ...] = ()
    build_args: tuple[str, ...] = ()  # K=V, or K (the caller's environment's value)
    target: str | None = None
    no_cache: bool = False
    pull: bool = False
    labels: tuple[str, ...] = ()
    quiet: bool = False
    iidfile: str | None = None
    network: str | None = None  # RUN's; None: run's default (slirp where it can be)
    secrets: tuple[str, ...] = ()  # id=ID,src=PATH
    platform: str | None = None


class Stage:
    """What a stage has made so far."""

    def __init__(self, image_id: str | None, config: dict, args: dict[str, str]) -> None:
        self.image_id = image_id
        self.config = config
        self.args = args  # the ARGs declared in the stage, with their values
        self.cmd_set = False  # a CMD in this stage (docker: ENTRYPOINT keeps it then)

    def env(self) -> dict[str, str]:
        from rootless.engine.build_steps import env_dict

        return {**self.args, **env_dict(self.config)}


def image_build(store, opts: BuildOptions, pull=None) -> str:
    """Build; returns the image id. Progress goes to stdout (nothing with -q)."""
    from rootless.engine.build_source import load_source

    build_args = _build_args(opts.build_args)
    names = [_tag_checked(t) for t in opts.tags]
    secrets = _secrets(opts.secrets)
    from rootless.build.errors import DockerfileError
    from rootless.engine.images import _temp_cleaned

    _interrupt_on_term()
    with _temp_cleaned(store):
        source = load_source(store, opts.context, opts.dockerfile)
        try:
            builder = Builder(store, opts, source, build_args, secrets, pull)
            image_id = builder.build()
            if opts.labels:
                image_id = builder.final_labels(image_id)
        except DockerfileError as e:  # docker build exits 1 for its parse errors too
            raise BuildError(str(e)) from None
        finally:
            source.close()
    from rootless.engine.images import image_tag

    for name in names:
        image_tag(store, image_id, name)
    if opts.iidfile:
        _write_iidfile(opts.iidfile, image_id)
    out = builder.out
    if opts.quiet:
        print(image_id, flush=True)
    else:
        print(f"Successfully built {image_id[7:19]}", file=out)
        for name in opts.tags:
            print(f"Successfully tagged {_shown_name(name)}", file=out)
        out.flush()
    return image_id


class Builder:
    def __init__(self, store, opts: BuildOptions, source, build_args: dict[str, str],
                 secrets: dict[str, str], pull) -> None:
        from rootless.build.dockerfile import parse
        from rootless.build.stages import needed, stages

        self.store, self.opts, self.source = store, opts, source
        self.build_args, self.secrets, self.pull = build_args, secrets, pull
        self.filename = source.dockerfile_name
        self.out = open(os.devnull, "w") if opts.quiet else sys.stdout
        self.dockerfile = parse(source.dockerfile_text, self.filename)
        self.buildfile = stages(self.dockerfile, self.filename, build_args)
        self.global_args = _global_args(self.buildfile, build_args, self.dockerfile.escape)
        self.order = needed(self.buildfile, opts.target, self.filename)
        self.results: dict[int, str | None] = {}  # stage index -> its image
        self.total = sum(1 + len(self.buildfile.stages[i].instructions) for i in self.order)
        self.number = 0
        self.used_args: set[str] = set(self.global_args)
        self.cleanup: list[str] = []  # temporary files of the steps, removed at the end

    def build(self) -> str:
        try:
            for index in self.order:
                self.results[index] = self._stage(self.buildfile.stages[index])
        finally:
            for path in self.cleanup:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        unused = sorted(set(self.build_args) - self.used_args - set(PREDEFINED_ARGS))
        if unused:
            print(f"[Warning] One or more build-args {unused} were not consumed",
                  file=sys.stderr)
        final = self.results[self.order[-1]]
        if final is None:  # `FROM scratch` and nothing else
            from rootless.engine.build_image import scratch_config, store_step

            final = store_step(self.store, None, scratch_config())
        return final

    # ---- stages ----

    def _stage(self, stage) -> str | None:
        self._announce(f"FROM {stage.base}" + (f" AS {stage.name}" if stage.name else ""))
        state = self._base(stage)
        triggers = state.config.get("config", {}).get("OnBuild") or []
        if triggers:
            state = self._run_triggers(stage, state, triggers)
        for step in stage.instructions:
            self._announce(step.raw.original)
            state = self._step(state, step)
        return state.image_id

    def _base(self, stage) -> Stage:
        from rootless.engine.build_image import scratch_config

        args = {}
        if stage.base_stage is not None:
            image_id = self.results[stage.base_stage]
        elif stage.base == "scratch":
            print(" ---> (scratch)", file=self.out)
            return Stage(None, scratch_config(), args)
        else:
            try:
                image_id = self._image(stage.base)
            except RootlessError as e:
                raise BuildError(f"{self.filename}:{stage.line}: FROM {stage.base}: {e}") \
                    from None
        if image_id is None:
            return Stage(None, scratch_config(), args)
        config = _config_of(self.store, image_id)
        print(f" ---> {image_id[7:19]}", file=self.out)
        return Stage(image_id, config, args)

    def _image(self, name: str) -> str:
        """A base or --from image: local, else pulled (--pull: pulled anyway)."""
        from rootless.engine.images import image_resolve
        from rootless.errors import NotFoundError

        if self.opts.pull and self.pull is not None:
            self.pull(self.store, name, False)
        try:
            return image_resolve(self.store, name).id
        except NotFoundError:
            if self.pull is None or self.opts.pull:
                raise
        self.pull(self.store, name, True)
        return image_resolve(self.store, name).id

    def _run_triggers(self, stage, state: Stage, triggers: list[str]) -> Stage:
        from rootless.build.dockerfile import parse_line

        print(f"# Executing {len(triggers)} build trigger"
              f"{'s' if len(triggers) > 1 else ''}", file=self.out)
        # the triggers are the base's: the new image does not inherit them
        state.config = json.loads(json.dumps(state.config))
        state.config.setdefault("config", {})["OnBuild"] = None
        for text in triggers:
            raw = parse_line(text, self.filename, stage.line)
            state = self._step(state, ins.instruction(raw, self.filename), trigger=True)
        return state

    def _announce(self, text: str) -> None:
        self.number += 1
        print(f"Step {self.number}/{self.total} : {text}", file=self.out, flush=True)

    # ---- steps ----

    def _step(self, state: Stage, step, trigger: bool = False) -> Stage:
        from rootless.engine.build_steps import apply

        kind = type(step)
        if kind is ins.Arg:
            return self._arg(state, step)
        words = self._words(state, step)
        sources = None
        if kind in (ins.Copy, ins.Add):
            from rootless.engine.build_files import plan

            sources = plan(self, state, step, words)
            words = {**words, "digests": [s.digest for s in sources]}
        elif kind is ins.Run and step.mounts:
            from rootless.engine.build_run import mount_sources

            words = {**words, "binds": mount_sources(self, state, step)}
        key = self._key(state, step, words)
        cached = None if self.opts.no_cache else self._cached(key)
        if cached is not None:
            print(" ---> Using cache", file=self.out)
            image_id = cached
        elif kind is ins.Run:
            from rootless.engine.build_run import run_step

            image_id = run_step(self, state, step, key)
        elif sources is not None:
            from rootless.engine.build_files import write

            image_id = write(self, state, step, words, sources, key)
        else:
            config = _next_config(state.config)
            apply(config, step, {**words, "cmd_set": state.cmd_set})
            image_id = self._config_step(state, step, config, key)
        print(f" ---> {image_id[7:19]}", file=self.out, flush=True)
        new = Stage(image_id, _config_of(self.store, image_id), state.args)
        new.cmd_set = state.cmd_set or kind is ins.Cmd
        return new

    def _config_step(self, state: Stage, step, config: dict, key: str) -> str:
        from rootless.engine.build_steps import history_text

        if type(step) is ins.Workdir:
            from rootless.engine.build_files import workdir_layer, workdir_missing

            path = config["config"]["WorkingDir"]
            if workdir_missing(self, state, path):
                return workdir_layer(self, state, path, config, key)
        _add_history(config, history_text(step, _shown(step)), empty=True)
        return self._store(state, config, None, key)

    def stage_image(self, name: str, step) -> str:
        """COPY --from's image: a stage by name or index, else an image."""
        for index, stage in enumerate(self.buildfile.stages):
            if name.lower() == (stage.name or "") or name == str(index):
                if index not in self.results:
                    raise self._error(step, f"stage {name} is not built before this step")
                image_id = self.results[index]
                if image_id is None:
                    raise self._error(step, f"stage {name} has no files to copy from")
                return image_id
        try:
            return self._image(name)
        except RootlessError as e:
            raise self._error(step, f"--from={name} names no stage, and the image cannot "
                              f"be had: {e}") from None

    def layer_dirs(self, image_id: str | None) -> list[str]:
        from rootless.engine.images import image_resolve

        return [] if image_id is None else image_resolve(self.store, image_id).layer_dirs

    def _arg(self, state: Stage, step) -> Stage:
        """ARG: declares names later steps see (not stored in the image). A name with
        no default takes the build arg, or the global ARG's value."""
        from rootless.build.expand import ExpandError, expand_word

        args = dict(state.args)
        globals_ = self.global_args
        for name, default in step.pairs:
            self.used_args.add(name)
            if name in self.build_args:
                args[name] = self.build_args[name]
            elif default is not None:
                try:
                    args[name] = expand_word(default, state.env(), self._escape())
                except ExpandError as e:
                    raise self._error(step, str(e)) from None
            elif name in globals_ and globals_[name] is not None:
                args[name] = globals_[name]
        new = Stage(state.image_id, state.config, args)
        new.cmd_set = state.cmd_set
        if state.image_id:
            print(f" ---> {state.image_id[7:19]}", file=self.out)
        return new

    def _escape(self) -> str:
        return self.dockerfile.escape

    def _words(self, state: Stage, step) -> dict:
        from rootless.engine.build_expand import expanded

        try:
            return expanded(step, state.env(), self._escape())
        except BuildError as e:
            raise self._error(step, str(e)) from None

    def _key(self, state: Stage, step, words: dict) -> str:
        """BuildKit's rule: the ARGs in scope are part of a RUN's environment, so each
        counts for a RUN; any other step sees an ARG only where it expands one, and the
        expanded words are in the key already, so an unrelated --build-arg leaves a
        COPY's, an ENV's or a WORKDIR's cache alone."""
        seen = sorted(state.args.items()) if type(step) is ins.Run else []
        data = [state.image_id or "scratch", step.raw.original,
                seen, json.dumps(words, sort_keys=True, default=str)]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()

    def _cached(self, key: str) -> str | None:
        from rootless.store import metadata as md

        image_id = md.build_cache_get(self.store, key)
        if image_id is None or md.image_get(self.store, image_id) is None:
            return None
        return image_id

    def _store(self, state: Stage, config: dict, layer, key: str) -> str:
        from rootless.engine.build_image import store_step
        from rootless.store import metadata as md

        image_id = store_step(self.store, state.image_id, config, layer)
        with self.store.lock(), self.store.db:
            md.build_cache_set(self.store, key, image_id, time.time())
        return image_id

    def _error(self, step, what: str) -> BuildError:
        return BuildError(f"{self.filename}:{step.raw.line}: {what}")

    def final_labels(self, image_id: str) -> str:
        """--label: the labels added to the final image, as docker adds them."""
        config = _next_config(_config_of(self.store, image_id))
        section = config.setdefault("config", {})
        labels = dict(section.get("Labels") or {})
        for item in self.opts.labels:
            key, _, value = item.partition("=")
            labels[key] = value
        section["Labels"] = labels
        from rootless.engine.build_image import store_step

        return store_step(self.store, image_id, config)


# ---- helpers ----

def _config_of(store, image_id: str) -> dict:
    from rootless.store import metadata as md

    return json.loads(md.image_get(store, image_id).config)


def _next_config(config: dict) -> dict:
    """A copy of the parent's config for the next image (its id is not the parent's)."""
    config = json.loads(json.dumps(config))
    config["created"] = _now()
    config.pop("container_config", None)
    config.pop("container", None)
    return config


def _now() -> str:
    from rootless.image.manifest import rfc3339

    return rfc3339(time.time())


def _add_history(config: dict, created_by: str, empty: bool) -> None:
    entry = {"created": config.get("created") or _now(), "created_by": created_by}
    if empty:
        entry["empty_layer"] = True
    history = config.get("history") if isinstance(config.get("history"), list) else []
    config["history"] = [*history, entry]


def _shown(step) -> str:
    """The instruction as history shows it: keyword and arguments on one line."""
    text = step.raw.original.strip()
    keyword, _, rest = text.partition(" ")
    return f"{keyword.upper()} {' '.join(rest.split())}".strip()


def _interrupt_on_term() -> None:
    """SIGTERM and SIGHUP end a build as Ctrl-C does: the step's container is removed
    on the way out, nothing is left half-made."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def _global_args(buildfile, build_args: dict[str, str], escape: str) -> dict[str, str]:
    """The ARGs before the first FROM, with their build-arg or default values."""
    from rootless.build.expand import ExpandError, expand_word

    values: dict[str, str] = {}
    for name, default in buildfile.global_args:
        if name in build_args:
            values[name] = build_args[name]
        elif default is not None:
            try:
                values[name] = expand_word(default, values, escape)
            except ExpandError as e:
                raise BuildError(str(e)) from None
    return values


def _build_args(items: tuple[str, ...]) -> dict[str, str]:
    from rootless.errors import UsageError

    args: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid build arg: {item!r}")
        if sep:
            args[key] = value
        elif key in os.environ:
            args[key] = os.environ[key]
    return args


def _secrets(items: tuple[str, ...]) -> dict[str, str]:
    from rootless.errors import UsageError

    found: dict[str, str] = {}
    for item in items:
        fields = dict(part.partition("=")[::2] for part in item.split(","))
        ident = fields.get("id")
        src = fields.get("src") or fields.get("source") or fields.get("env")
        if not ident or not src:
            raise UsageError(f"invalid secret {item!r}: want id=ID,src=PATH")
        if "env" in fields and not ("src" in fields or "source" in fields):
            src = "env:" + src
        found[ident] = src
    return found


def _tag_checked(name: str) -> str:
    from rootless.engine.images import _tag_name
    from rootless.errors import UsageError

    try:
        return _tag_name(name)
    except UsageError as e:
        raise UsageError(f"invalid argument {name!r} for \"-t, --tag\" flag: {e}") from None


def _shown_name(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _write_iidfile(path: str, image_id: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(image_id)
    os.replace(tmp, path)


def add_history(config: dict, created_by: str, empty: bool = False) -> None:
    _add_history(config, created_by, empty)


next_config = _next_config
