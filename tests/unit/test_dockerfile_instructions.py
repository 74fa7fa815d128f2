"""build/instructions.py and build/mounts.py: one record per instruction, checked with
buildkit's rules and messages; nothing expanded yet (the executor expands per stage)."""

from __future__ import annotations

import pytest

from rootless.build.dockerfile import parse
from rootless.build.errors import DockerfileError
from rootless.build.expand import expand_word
from rootless.build.instructions import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
    instruction,
)
from rootless.build.mounts import MountError, parse_mount


def make(line: str):
    (raw,) = parse(line).instructions
    return instruction(raw, "Dockerfile")


def error(line: str) -> str:
    with pytest.raises(DockerfileError) as info:
        make(line)
    message = str(info.value)
    assert message.startswith("Dockerfile:1: ") and "\n" not in message
    return message.removeprefix("Dockerfile:1: ")


# -- FROM ----------------------------------------------------------------------------------

def test_from_an_image():
    assert make("FROM busybox:1.36")[1:] == ("busybox:1.36", None, None)


def test_from_as_names_the_stage_lower_cased():
    assert make("FROM busybox AS Build").name == "build"
    assert make("from busybox as build").name == "build"


def test_from_platform_flag_is_kept_unexpanded():
    assert make("FROM --platform=$BUILDPLATFORM golang AS b").platform == "$BUILDPLATFORM"


def test_from_with_two_arguments_is_dockers_error():
    assert error("FROM busybox build") == "FROM requires either one or three arguments"


def test_from_with_a_symbol_in_the_stage_name_is_dockers_error():
    assert error("FROM busybox AS 1st").startswith('invalid name for build stage: "1st"')


def test_from_with_an_unknown_flag_is_dockers_error():
    assert error("FROM --plaform=linux busybox") == \
        "unknown flag: --plaform (did you mean platform?)"


# -- RUN, CMD, ENTRYPOINT, SHELL -----------------------------------------------------------

def test_run_shell_form_is_the_whole_line():
    run = make("RUN echo $HOME && ls")
    assert (run.command, run.shell_form) == (("echo $HOME && ls",), True)


def test_run_exec_form_is_the_argv():
    run = make('RUN ["/bin/echo", "$HOME"]')
    assert (run.command, run.shell_form) == (("/bin/echo", "$HOME"), False)


def test_run_flags_mount_network_and_security():
    run = make("RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t "
               "--network=none --security=sandbox make")
    assert run.mounts == ("type=cache,target=/c", "type=tmpfs,target=/t")
    assert (run.network, run.security) == ("none", "sandbox")


def test_run_without_flags_has_no_network_or_security():
    assert make("RUN true")[3:] == ((), None, None)


def test_run_with_an_invalid_network_is_dockers_error():
    assert error("RUN --network=bridge true") == 'invalid network mode "bridge"'


def test_run_with_an_invalid_security_is_dockers_error():
    assert error("RUN --security=root true") == 'security "root" is not valid'


def test_run_with_a_bad_mount_fails_when_parsed():
    assert error("RUN --mount=type=nfs,target=/x true") == 'unsupported mount type "nfs"'


def test_run_with_a_heredoc_keeps_it():
    (raw,) = parse("RUN <<EOF\necho hi\nEOF\n").instructions
    run = instruction(raw, "Dockerfile")
    assert run.command == ("<<EOF",) and run.raw.heredocs[0].body == "echo hi\n"


def test_cmd_exec_and_shell_forms():
    assert make('CMD ["sh", "-c", "x"]')[1:] == (("sh", "-c", "x"), False)
    assert make("CMD echo hi")[1:] == (("echo hi",), True)


def test_a_dash_dash_word_first_after_cmd_is_a_flag_as_in_docker():
    assert error("CMD --help") == "unknown flag: --help"


def test_entrypoint_empty_json_clears_it():
    assert make("ENTRYPOINT []")[1:] == ((), False)


def test_shell_takes_a_json_array():
    assert make('SHELL ["powershell", "-command"]').shell == ("powershell", "-command")


def test_shell_in_shell_form_is_dockers_error():
    assert error("SHELL powershell -command") == "SHELL requires the arguments to be in " \
                                                 "JSON form"


def test_shell_empty_is_dockers_error():
    assert error("SHELL []") == "SHELL requires at least one argument"


# -- ENV, LABEL, ARG -----------------------------------------------------------------------

def test_env_key_value_pairs_keep_their_words_unexpanded():
    env = make('ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog MY_CAT=fluffy')
    assert env.pairs == (("MY_NAME", '"John Doe"'), ("MY_DOG", "Rex\\ The\\ Dog"),
                         ("MY_CAT", "fluffy"))


def test_env_values_expand_to_the_references_results():
    env = make('ENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog MY_CAT=fluffy')
    assert [expand_word(v, {}) for _, v in env.pairs] == ["John Doe", "Rex The Dog", "fluffy"]


def test_env_values_of_one_instruction_see_the_values_before_it():
    # the reference: ENV abc=hello, then ENV abc=bye def=$abc gives def=hello
    env = make("ENV abc=bye def=$abc")
    assert [(k, expand_word(v, {"abc": "hello"})) for k, v in env.pairs] == [
        ("abc", "bye"), ("def", "hello")]


def test_env_old_form_takes_the_rest_of_the_line_as_the_value():
    assert make("ENV MY_VAR my value  here").pairs == (("MY_VAR", "my value  here"),)


def test_env_old_form_without_a_value_is_dockers_error():
    assert error("ENV ONLYKEY") == "ENV must have two arguments"


def test_env_pair_without_equals_is_dockers_error():
    assert error("ENV A=1 B").startswith("syntax error - can't find = in \"B\"")


def test_env_with_a_blank_name_is_dockers_error():
    assert error("ENV =x") == "ENV names can not be blank"


def test_env_without_arguments_is_dockers_error():
    assert error("ENV") == "ENV requires at least one argument"


def test_label_pairs_keep_quoted_keys_and_values():
    label = make('LABEL "com.example.vendor"="ACME Incorporated" version=1.0')
    assert label.pairs == (('"com.example.vendor"', '"ACME Incorporated"'),
                           ("version", "1.0"))


def test_label_value_may_span_continuation_lines():
    (raw,) = parse('LABEL description="This text illustrates \\\nthat label-values can '
                   'span multiple lines."\n').instructions
    (pair,) = instruction(raw, "Dockerfile").pairs
    assert expand_word(pair[1], {}) == ("This text illustrates that label-values can span "
                                        "multiple lines.")


def test_arg_names_with_and_without_defaults():
    assert make("ARG user1=someuser buildno").pairs == (("user1", "someuser"),
                                                        ("buildno", None))


def test_arg_with_an_empty_default_is_set_to_empty():
    assert make('ARG a= b=""').pairs == (("a", ""), ("b", '""'))


def test_arg_with_a_blank_name_is_dockers_error():
    assert error("ARG =1") == "ARG names can not be blank"


def test_arg_without_arguments_is_dockers_error():
    assert error("ARG") == "ARG requires at least one argument"


# -- the one-argument instructions ---------------------------------------------------------

def test_maintainer_user_workdir_stopsignal_take_the_rest_of_the_line():
    assert make("MAINTAINER Jane Doe <jane@example.com>").name == "Jane Doe <jane@example.com>"
    assert make("USER app:app").user == "app:app"
    assert make("WORKDIR /path/$DIRNAME").path == "/path/$DIRNAME"
    assert make("STOPSIGNAL SIGKILL").signal == "SIGKILL"


@pytest.mark.parametrize("keyword", ["USER", "WORKDIR", "STOPSIGNAL", "MAINTAINER"])
def test_one_argument_instructions_without_one_are_dockers_error(keyword):
    assert error(keyword) == f"{keyword} requires exactly one argument"


def test_expose_ports_are_words_sorted_as_docker_sorts_them():
    assert make("EXPOSE 80/udp 443 80/tcp").ports == ("443", "80/tcp", "80/udp")


def test_expose_without_ports_is_dockers_error():
    assert error("EXPOSE") == "EXPOSE requires at least one argument"


def test_volume_json_and_word_forms():
    assert make('VOLUME ["/data", "/var/log"]').paths == ("/data", "/var/log")
    assert make("VOLUME /data /var/log").paths == ("/data", "/var/log")


def test_volume_with_an_empty_path_is_dockers_error():
    assert error('VOLUME ["/data", " "]') == "VOLUME specified can not be an empty string"


# -- COPY, ADD -----------------------------------------------------------------------------

def test_copy_sources_and_destination():
    copy = make("COPY a b* dir/")
    assert (copy.sources, copy.dest) == (("a", "b*"), "dir/")


def test_copy_json_form_allows_paths_with_spaces():
    copy = make('COPY ["my file", "/dest dir/"]')
    assert (copy.sources, copy.dest) == (("my file",), "/dest dir/")


def test_copy_flags():
    copy = make("COPY --from=build --chown=1:2 --chmod=644 --link --parents "
                "--exclude=*.tmp --exclude=*.log a /b")
    assert (copy.from_, copy.chown, copy.chmod, copy.link, copy.parents, copy.exclude) == (
        "build", "1:2", "644", True, True, ("*.tmp", "*.log"))


def test_copy_boolean_flag_accepts_an_explicit_false():
    assert make("COPY --link=false a b").link is False


def test_copy_boolean_flag_with_a_bad_value_is_dockers_error():
    assert error("COPY --link=yes a b") == "expecting boolean value for flag --link, not: yes"


def test_copy_string_flag_without_a_value_is_dockers_error():
    assert error("COPY --from a b") == "missing a value on flag: --from"


def test_copy_repeated_flag_is_dockers_error():
    assert error("COPY --chown=1 --chown=2 a b") == "duplicate flag specified: --chown"


def test_copy_with_one_argument_is_dockers_error():
    assert error("COPY onlyone") == ("COPY requires at least two arguments, but only one was "
                                     "provided. Destination could not be determined")


def test_copy_heredoc_source_becomes_a_file_named_after_it():
    (raw,) = parse("COPY <<EOF greeting.txt\nhello world\nEOF\n").instructions
    copy = instruction(raw, "Dockerfile")
    assert copy.sources == () and copy.dest == "greeting.txt"
    assert [(d.name, d.body) for d in copy.heredocs] == [("EOF", "hello world\n")]


def test_copy_heredoc_as_destination_is_dockers_error():
    with pytest.raises(DockerfileError) as info:
        instruction(parse("COPY a <<EOF\nx\nEOF\n").instructions[0], "Dockerfile")
    assert str(info.value) == "Dockerfile:1: COPY cannot accept a heredoc as a destination"


def test_add_flags():
    add = make("ADD --checksum=sha256:abc --keep-git-dir --chown=1 --chmod=755 --link "
               "--unpack=false https://example.com/x.tar /x")
    assert (add.checksum, add.keep_git_dir, add.chown, add.chmod, add.link, add.unpack) == (
        "sha256:abc", True, "1", "755", True, False)
    assert add.sources == ("https://example.com/x.tar",)


def test_add_does_not_take_copy_from():
    assert error("ADD --from=x a b") == "unknown flag: --from"


# -- ONBUILD -------------------------------------------------------------------------------

def test_onbuild_holds_its_trigger_and_the_text_docker_stores():
    onbuild = make("ONBUILD ADD website.tar /var/www/html/")
    assert (onbuild.trigger.keyword, onbuild.trigger.args) == (
        "ADD", "website.tar /var/www/html/")
    assert onbuild.expression == "ADD website.tar /var/www/html/"


def test_onbuild_with_a_heredoc_stores_the_body_after_the_trigger():
    (raw,) = parse("ONBUILD RUN <<EOF\necho hi\nEOF\n").instructions
    onbuild = instruction(raw, "Dockerfile")
    assert onbuild.expression == "RUN <<EOF\necho hi\nEOF"
    assert onbuild.trigger.heredocs[0].body == "echo hi\n"


def test_onbuild_onbuild_is_dockers_error():
    assert error("ONBUILD ONBUILD RUN x") == \
        "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"


@pytest.mark.parametrize("keyword", ["FROM", "MAINTAINER"])
def test_onbuild_from_and_maintainer_are_dockers_error(keyword):
    assert error(f"ONBUILD {keyword} x") == f"{keyword} isn't allowed as an ONBUILD trigger"


def test_onbuild_of_an_unknown_instruction_fails_now_not_in_the_child_build():
    assert error("ONBUILD BOGUS x") == "unknown instruction: BOGUS"


def test_onbuild_trigger_is_checked_like_an_instruction():
    assert error("ONBUILD COPY --nope a b") == "unknown flag: --nope"


# -- HEALTHCHECK ---------------------------------------------------------------------------

def test_healthcheck_with_durations_in_go_syntax_and_retries():
    check = make("HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s "
                 "--start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1")
    assert (check.command, check.shell_form) == (("curl -f http://localhost/ || exit 1",), True)
    assert (check.interval, check.timeout, check.start_period, check.start_interval,
            check.retries) == (300.0, 3.0, 90.0, 0.5, 3)


def test_healthcheck_exec_form():
    assert make('HEALTHCHECK CMD ["/bin/check", "-q"]')[1:3] == (("/bin/check", "-q"), False)


def test_healthcheck_without_flags_leaves_them_unset():
    assert make("HEALTHCHECK CMD true")[3:] == (None, None, None, None, None)


def test_healthcheck_none_disables_it():
    assert make("HEALTHCHECK NONE").command is None


def test_healthcheck_none_with_arguments_is_dockers_error():
    assert error("HEALTHCHECK NONE x") == "HEALTHCHECK NONE takes no arguments"


def test_healthcheck_unknown_type_is_dockers_error():
    assert error("HEALTHCHECK RUN x") == 'unknown type "RUN" in HEALTHCHECK (try CMD)'


def test_healthcheck_cmd_without_a_command_is_dockers_error():
    assert error("HEALTHCHECK CMD") == "missing command after HEALTHCHECK CMD"


def test_healthcheck_bad_duration_is_gos_error():
    assert error("HEALTHCHECK --interval=5 CMD true") == 'time: missing unit in duration "5"'


def test_healthcheck_duration_under_a_millisecond_is_dockers_error():
    assert error("HEALTHCHECK --timeout=10us CMD true") == \
        'interval "timeout" cannot be less than 1ms'


def test_healthcheck_negative_retries_is_dockers_error():
    assert error("HEALTHCHECK --retries=-1 CMD true") == "--retries cannot be negative (-1)"


RECORDS = {"FROM a": From, "RUN a": Run, "CMD a": Cmd, "ENTRYPOINT a": Entrypoint,
           'SHELL ["a"]': Shell, "ENV a=1": Env, "LABEL a=1": Label, "MAINTAINER a": Maintainer,
           "EXPOSE 1": Expose, "VOLUME /a": Volume, "USER a": User, "WORKDIR /a": Workdir,
           "STOPSIGNAL 9": Stopsignal, "ARG a": Arg, "COPY a b": Copy, "ADD a b": Add,
           "ONBUILD RUN a": Onbuild, "HEALTHCHECK NONE": Healthcheck}


@pytest.mark.parametrize("line", sorted(RECORDS))
def test_each_instruction_makes_its_record_with_its_raw_first(line):
    record = make(line)
    assert type(record) is RECORDS[line]
    assert record.raw.original == line


# -- RUN --mount values --------------------------------------------------------------------

def test_mount_defaults_to_a_read_only_bind_of_the_context():
    mount = parse_mount("target=/src")
    assert (mount.type, mount.target, mount.readonly, mount.from_) == ("bind", "/src", True, "")


def test_cache_mount_defaults():
    mount = parse_mount("type=cache,target=/root/.cache/")
    assert (mount.readonly, mount.id, mount.sharing, mount.mode, mount.uid, mount.gid) == (
        False, "/root/.cache", "shared", 0o755, 0, 0)


def test_secret_mount_defaults_to_run_secrets_id_read_only_0400():
    mount = parse_mount("type=secret,id=aws")
    assert (mount.target, mount.id, mount.readonly, mount.mode) == (
        "/run/secrets/aws", "aws", True, 0o400)


def test_secret_mount_as_env_has_no_file_target():
    mount = parse_mount("type=secret,id=tok,env=TOKEN")
    assert (mount.env, mount.target) == ("TOKEN", "")


def test_tmpfs_size_in_go_units():
    assert parse_mount("type=tmpfs,target=/t,size=64m").size == 64 << 20


def test_mount_key_aliases_and_flags():
    mount = parse_mount("type=bind,from=build,src=/out,dst=/in,rw")
    assert (mount.from_, mount.source, mount.target, mount.readonly) == (
        "build", "/out", "/in", False)


def test_mount_mode_is_octal_and_uid_decimal():
    mount = parse_mount("type=cache,target=/c,mode=0700,uid=1000,gid=1000")
    assert (mount.mode, mount.uid, mount.gid) == (0o700, 1000, 1000)


def test_mount_values_expand_through_the_given_expander():
    mount = parse_mount("type=cache,target=$DIR,id=${ID}",
                        lambda word: expand_word(word, {"DIR": "/d", "ID": "x"}))
    assert (mount.target, mount.id) == ("/d", "x")


@pytest.mark.parametrize("value, message", [
    ("type=nfs", 'unsupported mount type "nfs"'),
    ("type=bind,mode=0700", 'mode not allowed for "bind" type mounts'),
    ("type=bind,target=/a,sharing=locked", "invalid cache sharing set for bind mount"),
    ("type=cache,target=/a,sharing=odd", 'unsupported sharing value "odd"'),
    ("type=secret", "invalid secret mount. one of source, target required"),
    ("type=secret,id=a,source=b", "both source and id can't be set"),
    ("type=ssh,source=x", "ssh does not support source"),
    ("type=bind,required", "unexpected key 'required' for mount type 'bind'"),
    ("type=bind,size=1m", "unexpected key 'size' for mount type 'bind'"),
    ("type=cache,target=/a,uid=-1", "invalid value -1 for uid"),
    ("type=cache,target=/a,mode=999", "invalid value 999 for mode"),
    ("target=/a,ro=maybe", "invalid value for ro: maybe"),
    ("target", "invalid field 'target' must be a key=value pair"),
    ("taget=/a", "unexpected key 'taget' in 'taget=/a' (did you mean target?)"),
    ("type=bind,from=$STAGE",
     "'from' doesn't support variable expansion, define alias stage instead"),
])
def test_bad_mount_values_are_dockers_errors(value, message):
    with pytest.raises(MountError) as info:
        parse_mount(value)
    assert str(info.value) == message
