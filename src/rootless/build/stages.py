"""The stage graph of a Dockerfile: stages, their bases, and which to build for a target.

Docker's rules (buildkit dockerfile2llb):
- only ARG may come before the first FROM; those global ARGs are in scope for FROM lines
  only (a stage sees one only after re-declaring it with a bare `ARG NAME`); a
  --build-arg overrides a declared ARG's default, and one that no ARG declares is not
  used at all;
- FROM's image (and --platform) expand with the global ARGs; `FROM <name>` is an
  earlier stage of that name, never a later one; stage names are unique;
- a stage depends on its FROM stage and on the stages its `COPY --from` and
  `RUN --mount=from=` name (by name, or by index: `--from=0`); a --from that names no
  stage is an image, not a dependency; stages nothing depends on are not built.
"""

from __future__ import annotations

import heapq

from rootless.build.dockerfile import Dockerfile, did_you_mean
from rootless.build.errors import DockerfileError
from rootless.build.expand import ExpandError, expand_word
from rootless.build.instructions import Arg, Copy, From, Run, instruction
from rootless.build.mounts import MountError, parse_mount
from rootless.records import record


@record
class Stage:
    index: int
    name: str | None
    base: str  # FROM's image expanded with the global ARGs, or the base stage's name
    platform: str | None  # expanded likewise
    base_stage: int | None  # the earlier stage FROM names, if it names one
    instructions: tuple  # the stage's instruction records after its FROM
    line: int  # FROM's line


@record
class BuildFile:
    global_args: tuple  # ((name, default or None), ...): the ARGs before the first FROM,
    #                     as declared (defaults unexpanded)
    stages: tuple  # Stage, ...
    escape: str = "\\"  # the escape directive, for the executor's expand_word calls
    global_env: tuple = ()  # ((name, value), ...): what those ARGs (and the predefined
    #                         args) resolve to, --build-arg applied: FROM's variables


def stages(df: Dockerfile, filename: str, build_args, predefined=None) -> BuildFile:
    """The stages of `df`. `predefined` are the automatic global args (TARGETPLATFORM,
    BUILDARCH, ...), in scope for FROM without a declaration; a build arg overrides one."""
    heads: list[From] = []
    bodies: list[list] = []
    meta: list[Arg] = []
    for raw in df.instructions:
        item = instruction(raw, filename)
        if isinstance(item, From):
            heads.append(item)
            bodies.append([])
        elif bodies:
            bodies[-1].append(item)
        elif isinstance(item, Arg):
            meta.append(item)
        else:
            raise DockerfileError(filename, raw.line, "no build stage in current context "
                                  f"({raw.keyword} before the first FROM)")
    if not heads:
        last = df.instructions[-1].line if df.instructions else 1
        raise DockerfileError(filename, last, "dockerfile contains no stages to build")
    env = {key: build_args.get(key, value) for key, value in (predefined or {}).items()}
    _meta_args(meta, env, build_args, filename, df.escape)
    built = _stage_records(heads, bodies, env, filename, df.escape)
    declared = tuple(pair for arg in meta for pair in arg.pairs)
    return BuildFile(declared, tuple(built), df.escape, tuple(env.items()))


def arg_value(name: str, default: str | None, env, build_args, global_env: tuple,
              escape: str = "\\") -> str | None:
    """What `ARG name[=default]` inside a stage sets: the --build-arg if one is given,
    else the default expanded with the stage's variables `env`, else (a bare ARG) the
    global value (BuildFile.global_env). None: no value. ExpandError from the default."""
    if name in build_args:
        return build_args[name]
    if default is not None:
        return expand_word(default, env, escape)
    return dict(global_env).get(name)


def needed(bf: BuildFile, target: str | None, filename: str) -> list[int]:
    """The indexes of the stages to build for `target` (a name, an index as a string, or
    None for the last stage), each after the stages it depends on."""
    goal = _target_index(bf, target, filename)
    deps = [_dependencies(bf, stage, filename) for stage in bf.stages]
    _check_cycles(bf, deps, filename)
    wanted, todo = {goal}, [goal]
    while todo:
        for dep in deps[todo.pop()]:
            if dep not in wanted:
                wanted.add(dep)
                todo.append(dep)
    return _in_build_order(wanted, deps)


def _meta_args(meta: list, env: dict, build_args, filename: str, escape: str) -> None:
    """Docker's meta args: each global ARG's value into `env`, in order."""
    for arg in meta:
        for key, default in arg.pairs:
            if key in build_args:
                value = build_args[key]
            elif default is not None:
                value = _expand(default, env, escape, filename, arg.raw.line)
            else:
                value = env.get(key)  # a bare ARG of a predefined one keeps its value
            if value is not None:
                env[key] = value


def _stage_records(heads: list, bodies: list, env: dict, filename: str, escape: str):
    names: dict[str, int] = {}
    for index, (head, body) in enumerate(zip(heads, bodies)):
        line = head.raw.line
        base = _expand(head.image, env, escape, filename, line)
        if not base:
            raise DockerfileError(filename, line, f"base name ({head.image}) should not be "
                                                  "blank")
        platform = None
        if head.platform is not None:
            platform = _expand(head.platform, env, escape, filename, line)
            if not platform:
                raise DockerfileError(filename, line, "empty platform value from expression "
                                                      f"{head.platform}")
        if head.name is not None and head.name in names:
            raise DockerfileError(filename, line, f'duplicate stage name "{head.name}", stage '
                                                  "names should be unique")
        base_stage = names.get(base)
        if head.name is not None:
            names[head.name] = index
        yield Stage(index, head.name, base, platform, base_stage, tuple(body), line)


def _expand(word: str, env, escape: str, filename: str, line: int) -> str:
    try:
        return expand_word(word, env, escape)
    except ExpandError as e:
        raise DockerfileError(filename, line, str(e)) from None


def _target_index(bf: BuildFile, target: str | None, filename: str) -> int:
    if target is None or target == "":
        return len(bf.stages) - 1
    for stage in bf.stages:
        if stage.name is not None and stage.name == target.lower():
            return stage.index
    if target.isascii() and target.isdigit() and int(target) < len(bf.stages):
        return int(target)
    names = [stage.name for stage in bf.stages if stage.name]
    raise DockerfileError(filename, None, f'target stage "{target}" could not be found'
                          + did_you_mean(target, names, case_sensitive=True))


def _dependencies(bf: BuildFile, stage: Stage, filename: str) -> dict[int, int]:
    """{stage index it depends on: the line that makes it depend}."""
    deps: dict[int, int] = {}
    if stage.base_stage is not None:
        deps[stage.base_stage] = stage.line
    env = dict(bf.global_env)
    for item in stage.instructions:
        for source in _from_values(item):
            line = item.raw.line
            found = _stage_named(bf, _expand(source, env, bf.escape, filename, line),
                                 filename, line)
            if found is not None:
                deps.setdefault(found, line)
    return deps


def _from_values(item) -> list[str]:
    if isinstance(item, Copy) and item.from_:
        return [item.from_]
    if isinstance(item, Run):
        values = []
        for value in item.mounts:
            try:
                source = parse_mount(value).from_
            except MountError:
                continue  # instruction() accepted it; an error surfaces at the step
            if source:
                values.append(source)
        return values
    return []


def _stage_named(bf: BuildFile, source: str, filename: str, line: int) -> int | None:
    if source.isascii() and source.isdigit():
        index = int(source)
        if index >= len(bf.stages):
            raise DockerfileError(filename, line, f"invalid stage index {index}")
        return index
    for stage in bf.stages:
        if stage.name is not None and stage.name == source.lower():
            return stage.index
    return None  # an image


def _stage_label(stage: Stage) -> str:
    return stage.name if stage.name is not None else f"stage-{stage.index}"


def _check_cycles(bf: BuildFile, deps: list, filename: str) -> None:
    done: set[int] = set()
    for start in range(len(deps)):
        if start in done:
            continue
        path, stack = {start}, [(start, iter(sorted(deps[start])))]
        done.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                path.discard(node)
                stack.pop()
            elif child in path:
                raise DockerfileError(filename, deps[node][child], "circular dependency "
                                      f"detected on stage: {_stage_label(bf.stages[start])}")
            elif child not in done:
                done.add(child)
                path.add(child)
                stack.append((child, iter(sorted(deps[child]))))


def _in_build_order(wanted: set, deps: list) -> list[int]:
    """Dependencies first; among stages ready together, the earlier one first."""
    waiting = {index: {d for d in deps[index] if d in wanted} for index in wanted}
    ready = [index for index, pending in waiting.items() if not pending]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for other, pending in waiting.items():
            if index in pending:
                pending.discard(index)
                if not pending:
                    heapq.heappush(ready, other)
    return order
