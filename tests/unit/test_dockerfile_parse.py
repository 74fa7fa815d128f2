"""build/dockerfile.py: the Dockerfile lexer/parser, held to buildkit's parser (the one
`docker build` uses) and the Dockerfile reference's examples."""

from __future__ import annotations

import random

import pytest

from rootless.build.dockerfile import Heredoc, parse, parse_line
from rootless.build.errors import DockerfileError
from rootless.errors import RootlessError


def only(text: str):
    (raw,) = parse(text).instructions
    return raw


def error(text: str, filename: str = "Dockerfile") -> str:
    with pytest.raises(DockerfileError) as info:
        parse(text, filename)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{filename}:")
    return message


# -- instructions, keywords, comments ------------------------------------------------------

def test_each_instruction_is_one_raw_record_with_its_first_line():
    df = parse("FROM busybox\nRUN echo hi\n")
    assert [(r.keyword, r.args, r.line) for r in df.instructions] == [
        ("FROM", "busybox", 1), ("RUN", "echo hi", 2)]


def test_keywords_are_case_insensitive_and_recorded_upper_case():
    assert only("run echo hi").keyword == "RUN"
    assert only("rUn echo hi").keyword == "RUN"


def test_an_unknown_instruction_is_an_error_naming_the_file_line_and_word():
    assert error("FROM busybox\nBOGUS bar\n", "app.Dockerfile") == \
        "app.Dockerfile:2: unknown instruction: BOGUS"


def test_a_near_miss_of_a_keyword_gets_dockers_suggestion():
    assert error("FROM busybox\nRUNN echo\n") == \
        "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)"


def test_the_error_is_a_rootless_error_so_the_cli_maps_it_to_exit_125():
    with pytest.raises(RootlessError) as info:
        parse("NOPE x")
    assert info.value.exit_code == 125


def test_a_file_of_comments_only_has_no_instructions():
    assert error("# nothing\n\n# here\n").endswith(": file with no instructions")


def test_an_empty_file_is_refused():
    assert error("") == "Dockerfile:1: the Dockerfile cannot be empty"


def test_hash_at_line_start_is_a_comment_and_elsewhere_an_argument():
    # the reference: RUN echo 'we are running some # of cool things'
    df = parse("# Comment\nRUN echo 'we are running some # of cool things'\n")
    assert df.instructions[0].args == "echo 'we are running some # of cool things'"


def test_leading_whitespace_before_comments_and_instructions_is_ignored():
    df = parse("        # this is a comment-line\n    RUN echo hello\nRUN echo world\n")
    assert [(r.args, r.line) for r in df.instructions] == [("echo hello", 2),
                                                          ("echo world", 3)]


def test_a_byte_order_mark_before_the_first_instruction_is_dropped():
    assert only("\ufeffFROM busybox").keyword == "FROM"


def test_crlf_line_endings_are_read_as_lf():
    df = parse("FROM busybox\r\nRUN echo a \\\r\n  b\r\n")
    assert df.instructions[1].args == "echo a   b"


def test_original_is_the_instruction_as_written_with_its_lines_joined():
    raw = only("  RUN  --network=none echo   a \\\n b  \n")
    assert raw.original == "RUN  --network=none echo   a  b"


# -- line continuation ---------------------------------------------------------------------

def test_the_escape_character_at_line_end_continues_the_instruction():
    raw = only("RUN echo hello \\\nworld\n")
    assert (raw.args, raw.line, raw.end_line) == ("echo hello world", 1, 2)


def test_blanks_after_the_continuation_character_are_allowed():
    assert only("RUN echo a \\   \t\nb\n").args == "echo a b"


def test_a_comment_inside_a_continuation_is_dropped():
    # the reference: RUN echo hello \ # comment \ world == RUN echo hello world
    assert only("RUN echo hello \\\n# comment\nworld\n").args == "echo hello world"


def test_an_indented_comment_inside_a_continuation_is_dropped_too():
    assert only("RUN echo hello \\\n    # comment\nworld\n").args == "echo hello world"


def test_empty_lines_inside_a_continuation_are_skipped():
    raw = only("RUN echo a \\\n\n   \nb\n")
    assert (raw.args, raw.end_line) == ("echo a b", 4)


def test_leading_whitespace_of_continuation_lines_is_kept():
    # the reference: prints "    hello    world"
    raw = only('RUN echo "\\\n     hello\\\n     world"\n')
    assert raw.args == 'echo "     hello     world"'


def test_a_continuation_at_end_of_file_ends_the_instruction():
    assert only("RUN echo a \\").args == "echo a"


def test_an_escaped_escape_at_line_end_does_not_continue():
    df = parse("FROM busybox\nRUN echo c:\\\\\nRUN dir\n")
    assert [r.args for r in df.instructions[1:]] == ["echo c:\\\\", "dir"]


def test_a_lone_continuation_character_on_a_line_continues():
    assert only("RUN echo a \\\n\\\nb\n").args == "echo a b"


# -- parser directives ---------------------------------------------------------------------

def test_directives_at_the_top_are_read_and_not_instructions():
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert df.escape == "`" and len(df.instructions) == 1


def test_directive_keys_are_case_insensitive_and_blanks_around_are_allowed():
    for line in ("#escape=`", "# escape =`", "#\tescape= `", "# escape = `", "#\t  eScApE=`"):
        assert parse(f"{line}\nFROM busybox\n").escape == "`", line


def test_a_directive_after_an_instruction_is_a_plain_comment():
    df = parse("FROM busybox\n# escape=`\nRUN a \\\nb\n")
    assert df.directives == {} and df.instructions[1].args == "a b"


def test_a_directive_after_a_comment_is_a_plain_comment():
    df = parse("# About my dockerfile\n# escape=`\nFROM busybox\n")
    assert df.directives == {} and df.escape == "\\"


def test_a_directive_after_an_empty_line_is_a_plain_comment():
    assert parse("\n# escape=`\nFROM busybox\n").escape == "\\"


def test_an_unknown_directive_ends_directive_parsing():
    # the reference: "# unknowndirective=value" then "# syntax=value": both comments
    df = parse("# unknowndirective=value\n# syntax=value\nFROM busybox\n")
    assert df.directives == {}


def test_a_repeated_directive_is_an_error():
    assert error("# escape=`\n# escape=\\\nFROM busybox\n") == \
        "Dockerfile:2: only one escape parser directive can be used"


def test_an_escape_directive_other_than_backslash_or_backtick_is_an_error():
    assert error("# escape=x\nFROM busybox\n") == \
        "Dockerfile:1: invalid escape token 'x' does not match ` or \\"


def test_the_check_directive_is_recorded():
    assert parse("# check=skip=all\nFROM busybox\n").directives == {"check": "skip=all"}


def test_with_backslash_escape_a_windows_path_continues_into_the_next_line():
    # the reference: COPY testfile.txt c:\ then RUN dir c:\ become ONE instruction
    df = parse("FROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n")
    assert [r.original for r in df.instructions] == [
        "FROM microsoft/nanoserver", "COPY testfile.txt c:RUN dir c:"]


def test_with_backtick_escape_windows_paths_stay_literal():
    df = parse("# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\n"
               "RUN dir c:\\\n")
    assert [(r.keyword, r.args) for r in df.instructions] == [
        ("FROM", "microsoft/nanoserver"), ("COPY", "testfile.txt c:\\"), ("RUN", "dir c:\\")]


def test_with_backtick_escape_a_backtick_continues_the_line():
    df = parse("# escape=`\nFROM busybox\nRUN echo a `\n  b\n")
    assert df.instructions[1].args == "echo a   b"
    assert df.instructions[1].escape == "`"


# -- flags ---------------------------------------------------------------------------------

def test_flags_before_the_arguments_are_recorded_in_order_with_raw_values():
    raw = only("COPY --from=build --chown=1:1 --link a b")
    assert raw.flags == (("from", "build"), ("chown", "1:1"), ("link", None))
    assert raw.args == "a b"


def test_a_quoted_flag_value_loses_its_quotes():
    assert only('COPY --chown="a b" x y').flags == (("chown", "a b"),)


def test_flags_stop_at_the_first_word_without_dashes():
    raw = only("RUN echo --not-a-flag")
    assert (raw.flags, raw.args) == ((), "echo --not-a-flag")


def test_a_double_dash_ends_the_flags():
    raw = only("RUN --network=none -- --literally")
    assert (raw.flags, raw.args) == ((("network", "none"),), "--literally")


# -- JSON (exec) form ----------------------------------------------------------------------

def test_a_json_array_of_strings_is_the_exec_form():
    assert only('CMD ["echo", "a b"]').json == ("echo", "a b")


def test_invalid_json_falls_back_to_the_shell_form():
    raw = only("CMD [echo, hi]")
    assert (raw.json, raw.args) == (None, "[echo, hi]")


def test_single_quotes_are_not_json_so_the_shell_form():
    assert only("RUN ['echo', 'hi']").json is None


def test_a_json_array_with_a_non_string_is_dockers_error():
    assert error('CMD ["a", 1]') == ("Dockerfile:1: when using JSON array syntax, arrays "
                                     "must be comprised of strings only")


def test_an_empty_json_array_is_an_empty_exec_form():
    assert only("ENTRYPOINT []").json == ()


def test_json_nan_is_not_json():
    assert only("CMD [NaN]").json is None


def test_json_escapes_are_decoded():
    assert only('RUN ["echo", "a\\tb\\u00e9"]').json == ("echo", "a\tb\u00e9")


def test_json_form_is_only_for_the_instructions_that_have_it():
    assert only('ENV A ["x"]').json is None
    assert only('VOLUME ["/data"]').json == ("/data",)


def test_healthcheck_json_is_the_part_after_cmd():
    assert only('HEALTHCHECK --interval=5s CMD ["true"]').json == ("true",)


# -- heredocs ------------------------------------------------------------------------------

RUN_SCRIPT = """FROM debian
RUN <<EOT bash
  set -ex
  apt-get update
EOT
RUN echo done
"""


def test_a_heredoc_body_is_the_lines_up_to_its_delimiter():
    run = parse(RUN_SCRIPT).instructions[1]
    assert run.heredocs == (Heredoc("EOT", "  set -ex\n  apt-get update\n", True, False),)
    assert (run.args, run.line, run.end_line) == ("<<EOT bash", 2, 5)
    assert parse(RUN_SCRIPT).instructions[2].line == 6


def test_several_heredocs_on_one_line_take_their_bodies_in_order():
    # the reference's "RUN <<FILE1 cat > file1 && <<FILE2 cat > file2"
    raw = only("RUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\n"
               "I am\nsecond\nFILE2\n")
    assert [(d.name, d.body) for d in raw.heredocs] == [("FILE1", "I am\nfirst\n"),
                                                        ("FILE2", "I am\nsecond\n")]


def test_a_quoted_delimiter_turns_expansion_off():
    for marker in ('<<"EOT"', "<<'EOT'", '<<E"OT"'):
        (doc,) = only(f"COPY {marker} /x\nbody\nEOT\n").heredocs
        assert (doc.name, doc.expand) == ("EOT", False), marker


def test_an_unquoted_delimiter_expands():
    (doc,) = only("COPY <<EOF greeting.txt\nhello world\nEOF\n").heredocs
    assert (doc.name, doc.body, doc.expand) == ("EOF", "hello world\n", True)


def test_dash_strips_leading_tabs_from_the_body_and_the_delimiter_line():
    (doc,) = only("COPY <<-EOT /script.sh\n\techo \"hello ${FOO}\"\n\t\tEOT\n").heredocs
    assert (doc.body, doc.strip_tabs) == ('echo "hello ${FOO}"\n', True)


def test_a_heredoc_may_name_a_file_descriptor():
    (doc,) = only("RUN 3<<EOF cat /dev/fd/3\nx\nEOF\n").heredocs
    assert doc.fd == 3


def test_a_missing_heredoc_terminator_is_an_error_naming_the_instruction_line():
    message = error("FROM busybox\nRUN <<EOF cat\nline\n")
    assert message.startswith("Dockerfile:2: unterminated heredoc")
    assert "EOF" in message


def test_heredocs_are_only_read_for_run_copy_and_add():
    df = parse("FROM busybox\nCMD cat <<EOF\nRUN true\n")
    assert [r.keyword for r in df.instructions] == ["FROM", "CMD", "RUN"]
    assert df.instructions[1].heredocs == ()


def test_exec_form_has_no_heredocs():
    df = parse('FROM busybox\nRUN ["cat", "<<EOF"]\nRUN true\n')
    assert len(df.instructions) == 3 and df.instructions[1].heredocs == ()


def test_an_onbuild_of_run_carries_its_heredoc():
    raw = only("ONBUILD RUN <<EOF\necho hi\nEOF\n")
    assert raw.heredocs == (Heredoc("EOF", "echo hi\n", True, False),)


def test_a_heredoc_body_is_not_parsed_as_instructions_or_comments():
    raw = only("RUN <<EOF\n# not a comment\nFROM not-an-instruction\nEOF\n")
    assert raw.heredocs[0].body == "# not a comment\nFROM not-an-instruction\n"


def test_a_heredoc_marker_inside_a_word_is_not_a_heredoc():
    assert only("RUN cat<<EOF").heredocs == ()


# -- parse_line: ONBUILD triggers ----------------------------------------------------------

def test_parse_line_reads_one_trigger_reported_at_the_given_line():
    raw = parse_line("ADD website.tar /var/www/html/", "Dockerfile", 7)
    assert (raw.keyword, raw.args, raw.line) == ("ADD", "website.tar /var/www/html/", 7)


def test_parse_line_reads_a_trigger_with_its_heredoc():
    raw = parse_line("RUN <<EOF\necho hi\nEOF", "Dockerfile", 3)
    assert raw.heredocs[0].body == "echo hi\n"


def test_parse_line_errors_name_the_given_line():
    with pytest.raises(DockerfileError) as info:
        parse_line("BOGUS x", "Dockerfile", 9)
    assert str(info.value) == "Dockerfile:9: unknown instruction: BOGUS"


def test_parse_line_reads_no_directives():
    raw = parse_line("# escape=`\nRUN a \\\necho b", "Dockerfile", 1)
    assert (raw.args, raw.escape) == ("a echo b", "\\")


# -- hostile input -------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    'RUN echo "unbalanced', "RUN echo 'unbalanced", "RUN \\", "\\", "\\\\\\", "RUN ${",
    "COPY <<\"EOF /x\nEOF\n", "RUN <<", "RUN <<-", "RUN " + "[" * 5000,
    "FROM " + "a" * 2_000_000, "RUN " + "\\\n" * 10000 + "x", "\x00\x01\x02",
    "RUN <<" + "<" * 1000, "# escape=", "ONBUILD", "ONBUILD ONBUILD ONBUILD RUN x",
    "COPY --=x a b", "RUN --", "RUN --a --b=", "\ud800", "RUN \ud800 x",
])
def test_hostile_text_gives_a_record_or_a_dockerfile_error_never_a_traceback(text):
    try:
        parse(text)
    except DockerfileError as e:
        assert "\n" not in str(e)


def test_random_bytes_never_raise_anything_but_a_dockerfile_error():
    rng = random.Random(10)
    alphabet = "RUNCOPYFROM \\`\"'$<>{}[]#=-\t\n\r,:aZ09\x00é"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        try:
            parse(text)
        except DockerfileError:
            pass
    for _ in range(300):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        try:
            parse(data.decode("utf-8", "surrogateescape"))
        except DockerfileError:
            pass
