"""build/stages.py: stages, global ARGs in FROM, and which stages a target needs, as
buildkit's dockerfile2llb decides them."""

from __future__ import annotations

import random

import pytest

from rootless.build.dockerfile import parse
from rootless.build.errors import DockerfileError
from rootless.build.expand import ExpandError
from rootless.build.instructions import Copy, Run
from rootless.build.stages import arg_value, needed, stages


def build(text: str, build_args=None, predefined=None):
    return stages(parse(text), "Dockerfile", build_args or {}, predefined)


def error(text: str, build_args=None, target=None) -> str:
    with pytest.raises(DockerfileError) as info:
        needed(build(text, build_args), target, "Dockerfile")
    message = str(info.value)
    assert message.startswith("Dockerfile") and "\n" not in message
    return message


MULTI = """\
FROM golang:1.21 AS build
WORKDIR /src
RUN go build -o /bin/hello ./main.go

FROM busybox AS unused
RUN echo never

FROM scratch
COPY --from=build /bin/hello /bin/hello
CMD ["/bin/hello"]
"""


# -- stages --------------------------------------------------------------------------------

def test_each_from_starts_a_stage_with_the_instructions_after_it():
    bf = build(MULTI)
    assert [(s.index, s.name, s.base, s.line) for s in bf.stages] == [
        (0, "build", "golang:1.21", 1), (1, "unused", "busybox", 5), (2, None, "scratch", 8)]
    assert [type(i).__name__ for i in bf.stages[2].instructions] == ["Copy", "Cmd"]


def test_from_an_earlier_stage_names_it_as_the_base():
    bf = build("FROM busybox AS base\nRUN true\nFROM base\nRUN true\n")
    assert bf.stages[1].base_stage == 0


def test_from_a_later_stage_name_is_an_image_not_a_stage():
    bf = build("FROM later\nFROM busybox AS later\n")
    assert bf.stages[0].base_stage is None and bf.stages[0].base == "later"


def test_an_instruction_before_the_first_from_is_an_error():
    message = error("RUN true\nFROM busybox\n")
    assert message.startswith("Dockerfile:1: no build stage in current context")


def test_only_args_before_the_first_from_is_no_stage_to_build():
    assert error("ARG A=1\n") == "Dockerfile:1: dockerfile contains no stages to build"


def test_duplicate_stage_names_are_an_error():
    assert error("FROM busybox AS b\nFROM busybox AS B\n") == \
        'Dockerfile:2: duplicate stage name "b", stage names should be unique'


def test_instruction_errors_surface_with_their_line():
    assert error("FROM busybox\nCOPY onlyone\n").startswith(
        "Dockerfile:2: COPY requires at least two arguments")


# -- global ARGs and FROM ------------------------------------------------------------------

def test_a_global_arg_default_expands_in_from():
    bf = build("ARG CODE_VERSION=latest\nFROM base:${CODE_VERSION}\n")
    assert bf.stages[0].base == "base:latest"


def test_a_build_arg_overrides_a_global_arg_default():
    bf = build("ARG CODE_VERSION=latest\nFROM base:${CODE_VERSION}\n",
               {"CODE_VERSION": "1.2"})
    assert bf.stages[0].base == "base:1.2"
    assert bf.global_env == (("CODE_VERSION", "1.2"),)


def test_a_build_arg_no_arg_declares_is_not_used_in_from():
    bf = build("FROM base:${TAG:-default}\n", {"TAG": "given"})
    assert bf.stages[0].base == "base:default"


def test_global_args_are_kept_as_declared():
    bf = build("ARG A=x\nARG B=${A}y C\nFROM img\n", {"A": "given"})
    assert bf.global_args == (("A", "x"), ("B", "${A}y"), ("C", None))


def test_a_global_arg_default_may_use_earlier_global_args():
    bf = build("ARG A=x\nARG B=${A}y\nFROM img:$B\n")
    assert bf.stages[0].base == "img:xy"
    assert bf.global_env == (("A", "x"), ("B", "xy"))


def test_a_global_arg_without_default_or_build_arg_has_no_value():
    bf = build("ARG A\nFROM img${A:+:$A}\n")
    assert bf.global_env == () and bf.stages[0].base == "img"


def test_an_arg_declared_after_from_does_not_reach_from():
    bf = build("FROM img:${V:-none}\nARG V=1\nFROM img:${V:-none}\n", {"V": "2"})
    assert [s.base for s in bf.stages] == ["img:none", "img:none"]


def test_predefined_platform_args_reach_from_without_a_declaration():
    bf = build("FROM --platform=$BUILDPLATFORM golang AS b\nFROM img-$TARGETARCH\n",
               predefined={"BUILDPLATFORM": "linux/amd64", "TARGETARCH": "arm64"})
    assert (bf.stages[0].platform, bf.stages[1].base) == ("linux/amd64", "img-arm64")


def test_from_expanding_to_nothing_is_dockers_error():
    assert error("ARG IMG\nFROM $IMG\n") == "Dockerfile:2: base name ($IMG) should not be blank"


def test_a_required_global_arg_left_unset_is_an_error_naming_the_from_line():
    message = error("ARG VERSION\nFROM img:${VERSION:?required}\n")
    assert message.startswith("Dockerfile:2: ") and "VERSION: required" in message


# -- ARG inside a stage (the reference's "Scope" section) ----------------------------------

def test_a_stage_arg_without_default_takes_the_global_value():
    bf = build("ARG VERSION=latest\nFROM busybox\nARG VERSION\n")
    assert arg_value("VERSION", None, {}, {}, bf.global_env) == "latest"


def test_a_stage_arg_build_arg_beats_its_default():
    # docker build --build-arg username=what_user: ARG username gives what_user
    assert arg_value("username", "some_user", {}, {"username": "what_user"}, ()) == "what_user"


def test_a_stage_arg_default_expands_with_the_stage_variables():
    assert arg_value("B", "${A}-x", {"A": "a"}, {}, ()) == "a-x"


def test_a_stage_arg_with_no_value_anywhere_has_none():
    assert arg_value("X", None, {}, {}, ()) is None


def test_a_stage_arg_default_error_is_an_expand_error():
    with pytest.raises(ExpandError):
        arg_value("X", "${Y:?}", {}, {}, ())


# -- needed: targets and dependencies ------------------------------------------------------

def test_the_default_target_is_the_last_stage_and_what_it_copies_from():
    assert needed(build(MULTI), None, "Dockerfile") == [0, 2]


def test_an_unused_stage_is_not_built():
    assert 1 not in needed(build(MULTI), None, "Dockerfile")


def test_a_target_by_name_builds_only_it_and_its_dependencies():
    assert needed(build(MULTI), "unused", "Dockerfile") == [1]


def test_a_target_by_index_is_accepted():
    assert needed(build(MULTI), "0", "Dockerfile") == [0]


def test_an_unknown_target_is_dockers_error():
    assert error(MULTI, target="nope") == 'Dockerfile: target stage "nope" could not be found'


def test_a_near_miss_target_gets_a_suggestion():
    assert error(MULTI, target="biuld").endswith("(did you mean build?)")


def test_from_stage_chains_are_dependencies():
    bf = build("FROM busybox AS a\nFROM a AS b\nFROM b\n")
    assert needed(bf, None, "Dockerfile") == [0, 1, 2]


def test_copy_from_by_index_is_a_dependency():
    bf = build("FROM busybox\nFROM busybox\nFROM scratch\nCOPY --from=0 /a /a\n")
    assert needed(bf, None, "Dockerfile") == [0, 2]


def test_copy_from_an_image_is_not_a_dependency():
    bf = build("FROM busybox AS a\nFROM scratch\nCOPY --from=nginx:latest /etc/nginx /x\n")
    assert needed(bf, None, "Dockerfile") == [1]


def test_copy_from_a_later_stage_builds_that_stage_first():
    bf = build("FROM busybox AS first\nCOPY --from=second /x /x\n"
               "FROM busybox AS second\nRUN true\n")
    assert needed(bf, "first", "Dockerfile") == [1, 0]


def test_run_mount_from_a_stage_is_a_dependency():
    bf = build("FROM busybox AS deps\nFROM busybox AS other\nFROM busybox\n"
               "RUN --mount=type=bind,from=deps,target=/d ls /d\n")
    assert needed(bf, None, "Dockerfile") == [0, 2]


def test_copy_from_with_a_global_arg_is_expanded_to_find_the_stage():
    bf = build("ARG SRC=builder\nFROM busybox AS builder\nFROM scratch\n"
               "COPY --from=$SRC /x /x\n")
    assert needed(bf, None, "Dockerfile") == [0, 1]
    copy = bf.stages[1].instructions[0]
    assert isinstance(copy, Copy) and copy.from_ == "$SRC"


def test_copy_from_a_stage_index_that_does_not_exist_is_dockers_error():
    assert error("FROM busybox\nCOPY --from=5 /a /a\n") == "Dockerfile:2: invalid stage index 5"


def test_copy_from_its_own_stage_is_a_cycle():
    assert error("FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n") == \
        "Dockerfile:2: circular dependency detected on stage: stage0"


def test_a_cycle_through_several_stages_is_dockers_error():
    text = ("FROM busybox AS stage0\nCOPY --from=stage2 f1 /sub/\n"
            "FROM busybox AS stage1\nCOPY --from=stage0 f2 /sub/\n"
            "FROM busybox AS stage2\nCOPY --from=stage1 f2 /sub/\n")
    assert error(text).endswith(": circular dependency detected on stage: stage0")


def test_a_cycle_among_unnamed_stages_names_them_by_index():
    assert error("FROM busybox\nCOPY --from=0 /a /a\n").endswith(
        "circular dependency detected on stage: stage-0")


def test_the_stage_records_keep_run_mounts_unexpanded_for_the_executor():
    bf = build("FROM busybox\nRUN --mount=type=cache,target=$D true\n")
    run = bf.stages[0].instructions[0]
    assert isinstance(run, Run) and run.mounts == ("type=cache,target=$D",)


def test_the_escape_directive_travels_with_the_build_file():
    assert build("# escape=`\nFROM busybox\n").escape == "`"


def test_random_dockerfiles_give_stages_or_a_dockerfile_error_never_a_traceback():
    rng = random.Random(12)
    lines = ["FROM busybox AS s", "FROM s", "FROM ${A:-x}", "ARG A=1 B", "COPY --from=s a b",
             "COPY --from=0 a b", "COPY --from=$A a b", "COPY --from=9 a b",
             "RUN --mount=from=s,target=/x true", "RUN --mount=type=bogus true", "ENV A",
             "ONBUILD ONBUILD x", "HEALTHCHECK --retries=x CMD true", "COPY <<EOF /x",
             "EOF", "RUN \\", "CMD [1]", "LABEL a", "EXPOSE", "FROM", "ARG =1"]
    for _ in range(3000):
        text = "\n".join(rng.choice(lines) for _ in range(rng.randint(1, 8)))
        try:
            bf = stages(parse(text), "Dockerfile", {"A": "s"})
            needed(bf, rng.choice([None, "s", "0", "7"]), "Dockerfile")
        except DockerfileError as e:
            assert "\n" not in str(e)
