"""Docker's --format templates (cli/template.py): Go text/template semantics over JSON-like
data, Docker's extra functions, and Docker's `table` list formatting."""

from __future__ import annotations

import pytest

from rootless.cli.template import TemplateError, parse, render, render_rows
from rootless.errors import UsageError

IMAGE = {
    "Id": "sha256:0123abcd",
    "RepoTags": ["busybox:latest", "busybox:1.36"],
    "Size": 4261550,
    "Config": {
        "Cmd": ["sh"],
        "Entrypoint": None,
        "Env": ["PATH=/bin", "A=1"],
        "Labels": {"maintainer": "Jane <jane@example.com>", "version": "1"},
        "OnBuild": [],
    },
    "State": {"Running": True, "Pid": 42, "Status": "running"},
    "Args": ["-c", "echo hi"],
}


def err(text: str, value=IMAGE) -> str:
    with pytest.raises(TemplateError) as info:
        render(text, value)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- the examples of Docker's documentation ----------------------------------------------

def test_field_of_the_top_object():
    assert render("{{.Id}}", IMAGE) == "sha256:0123abcd"


def test_nested_fields():
    assert render("{{.State.Pid}}", IMAGE) == "42"


def test_json_of_a_dict_is_compact_with_sorted_keys():
    assert render("{{json .Config.Labels}}", IMAGE) == \
        '{"maintainer":"Jane <jane@example.com>","version":"1"}'


def test_json_of_a_list_and_of_null():
    assert render("{{json .Config.Cmd}} {{json .Config.Entrypoint}}", IMAGE) == '["sh"] null'


def test_json_does_not_escape_html_or_unicode_like_docker():
    # docker/cli's json function turns encoding/json's HTML escaping off.
    assert render("{{json .}}", "<a&b> é") == '"<a&b> é"'


def test_json_writes_integral_floats_without_fraction():
    assert render("{{json .}}", {"a": 1000000.0, "b": 0.5, "c": 1e-7}) == \
        '{"a":1000000,"b":0.5,"c":1e-7}'


def test_json_escapes_control_characters():
    assert render("{{json .}}", "a\"b\\\n\x01") == '"a\\"b\\\\\\n\\u0001"'


def test_range_over_a_list():
    assert render("{{range .RepoTags}}{{.}} {{end}}", IMAGE) == \
        "busybox:latest busybox:1.36 "


def test_index_of_a_map():
    assert render('{{index .Config.Labels "maintainer"}}', IMAGE) == "Jane <jane@example.com>"


def test_empty_list_prints_as_brackets():
    assert render("{{.Config.OnBuild}}", IMAGE) == "[]"


def test_join():
    assert render('{{join .Args " , "}}', IMAGE) == "-c , echo hi"


def test_if_on_a_true_field():
    assert render("{{if .State.Running}}up{{else}}down{{end}}", IMAGE) == "up"


def test_lower_upper_title():
    assert render('{{lower "AbC"}} {{upper "abc"}} {{title "hello big world"}}', None) == \
        "abc ABC Hello Big World"


def test_split_gives_a_list():
    assert render('{{split "a:b:c" ":"}} {{len (split "a:b" ":")}}', None) == "[a b c] 2"


def test_pad_adds_spaces_around_non_empty_strings():
    assert render('[{{pad "x" 2 1}}][{{pad "" 2 1}}]', None) == "[  x ][]"


def test_truncate():
    assert render('{{truncate "abcdef" 3}} {{truncate "ab" 3}}', None) == "abc ab"


# -- Go's printing of values -------------------------------------------------------------

def test_list_prints_space_separated_in_brackets():
    assert render("{{.}}", ["a", 1, True]) == "[a 1 true]"


def test_dict_prints_as_go_map_with_sorted_keys():
    assert render("{{.}}", {"b": 2, "a": [1, 2]}) == "map[a:[1 2] b:2]"


def test_nil_inside_a_container_prints_as_nil():
    assert render("{{.}}", [None]) == "[<nil>]"


def test_missing_key_prints_no_value():
    assert render("{{.Nope}}", IMAGE) == "<no value>"


def test_none_value_prints_no_value():
    assert render("{{.Config.Entrypoint}}", IMAGE) == "<no value>"


def test_field_of_a_missing_key_is_no_value():
    assert render("{{.Nope.Deeper}}", IMAGE) == "<no value>"


def test_ints_print_without_fraction():
    assert render("{{.Size}}", IMAGE) == "4261550"


@pytest.mark.parametrize("value, text", [
    (1000000.0, "1e+06"), (100000.0, "100000"), (0.5, "0.5"), (2.0, "2"),
    (123456789.0, "1.23456789e+08"), (0.0001, "0.0001"), (0.00001, "1e-05"),
    (-1.5, "-1.5"), (float("inf"), "+Inf"),
])
def test_floats_print_like_go(value, text):
    assert render("{{.}}", value) == text


def test_bools_print_lower_case():
    assert render("{{.}} {{not .}}", True) == "true false"


# -- actions, text and whitespace --------------------------------------------------------

def test_plain_text_is_copied():
    assert render("no actions here { }", None) == "no actions here { }"


def test_trim_markers_remove_adjacent_whitespace():
    assert render("a  \n {{- .Id -}} \n  b", IMAGE) == "asha256:0123abcdb"


def test_minus_number_is_not_a_trim_marker():
    assert render("a {{-3}}", None) == "a -3"


def test_comment_renders_nothing():
    assert render("a{{/* a comment */}}b", None) == "ab"


def test_comment_with_trim_markers():
    assert render("a {{- /* c */ -}} b", None) == "ab"


def test_dot_is_the_value():
    assert render("{{.}}", "hello") == "hello"


def test_dollar_is_the_top_value_inside_range():
    assert render("{{range .Args}}{{$.State.Pid}}{{end}}", IMAGE) == "4242"


def test_string_literal_with_go_escapes():
    assert render('{{"a\\tb\\u00e9\\x41"}}', None) == "a\tb\u00e9A"


def test_raw_string_literal_keeps_backslashes():
    assert render("{{`a\\tb`}}", None) == "a\\tb"


def test_number_literals():
    assert render("{{1}} {{0x1F}} {{1.5}} {{1e3}} {{'a'}} {{1_000}}", None) == \
        "1 31 1.5 1000 97 1000"


def test_bool_and_nil_literals_as_arguments():
    assert render("{{print true false nil}}", None) == "true false <nil>"


# -- pipelines and variables -------------------------------------------------------------

def test_pipe_passes_value_as_last_argument():
    assert render('{{.State.Status | printf "state=%s"}}', IMAGE) == "state=running"


def test_pipe_chain_of_functions():
    assert render("{{.Config.Cmd | json | upper}}", IMAGE) == '["SH"]'


def test_parenthesized_pipeline_as_argument():
    assert render('{{upper (index .RepoTags 1)}}', IMAGE) == "BUSYBOX:1.36"


def test_field_of_a_parenthesized_pipeline():
    assert render('{{(index .Config "Labels").version}}', IMAGE) == "1"


def test_variable_declaration_prints_nothing():
    assert render("{{$x := .Id}}[{{$x}}]", IMAGE) == "[sha256:0123abcd]"


def test_assignment_in_a_block_changes_the_outer_variable():
    assert render("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", None) == "2"


def test_field_of_a_variable():
    assert render("{{$s := .State}}{{$s.Status}}", IMAGE) == "running"


def test_variable_of_a_block_is_not_seen_after_it():
    with pytest.raises(TemplateError, match='undefined variable "\\$x"'):
        parse("{{if $x := 1}}{{end}}{{$x}}")


# -- if, with, range ---------------------------------------------------------------------

@pytest.mark.parametrize("value", [False, 0, 0.0, None, "", [], {}])
def test_empty_values_are_false(value):
    assert render("{{if .}}yes{{else}}no{{end}}", value) == "no"


@pytest.mark.parametrize("value", [True, 1, -1, 0.5, "x", [0], {"a": None}])
def test_non_empty_values_are_true(value):
    assert render("{{if .}}yes{{else}}no{{end}}", value) == "yes"


def test_else_if_chain():
    template = parse("{{if eq . 1}}one{{else if eq . 2}}two{{else}}many{{end}}")
    assert [template.execute(n) for n in (1, 2, 3)] == ["one", "two", "many"]


def test_variable_of_an_if_is_seen_by_its_else_if():
    assert render("{{if $x := 0}}a{{else if eq $x 0}}zero{{end}}", None) == "zero"


def test_else_with_chain():
    assert render("{{with .a}}a{{else with .b}}{{.}}{{end}}", {"b": "bee"}) == "bee"


def test_with_sets_dot():
    assert render("{{with .State}}{{.Status}}{{end}}", IMAGE) == "running"


def test_with_else_on_empty():
    assert render("{{with .Config.OnBuild}}x{{else}}none{{end}}", IMAGE) == "none"


def test_range_with_index_and_value():
    assert render("{{range $i, $v := .Args}}{{$i}}={{$v}};{{end}}", IMAGE) == "0=-c;1=echo hi;"


def test_range_with_one_variable_gets_the_element():
    assert render("{{range $v := .Args}}<{{$v}}>{{end}}", IMAGE) == "<-c><echo hi>"


def test_range_over_a_dict_is_in_sorted_key_order():
    assert render("{{range $k, $v := .}}{{$k}}={{$v}} {{end}}", {"b": 2, "a": 1}) == "a=1 b=2 "


def test_range_else_on_empty_list():
    assert render("{{range .}}x{{else}}empty{{end}}", []) == "empty"


def test_range_over_nil_runs_else():
    assert render("{{range .Nope}}x{{else}}empty{{end}}", {}) == "empty"


def test_break_stops_the_range():
    assert render('{{range .}}{{if eq . "c"}}{{break}}{{end}}{{.}}{{end}}', list("abcd")) == "ab"


def test_continue_skips_to_the_next_element():
    assert render('{{range .}}{{if eq . "b"}}{{continue}}{{end}}{{.}}{{end}}', list("abc")) == "ac"


# -- builtin functions -------------------------------------------------------------------

def test_and_returns_first_false_or_last():
    assert render('{{and 1 0 2}} {{and 1 "x"}}', None) == "0 x"


def test_or_returns_first_true_or_last():
    assert render('{{or 0 "" "z"}} {{or 0 ""}}', None) == "z "


def test_and_does_not_evaluate_after_a_false_argument():
    assert render("{{and false (index .Nope 3)}}", {}) == "false"


def test_len_of_list_dict_and_string():
    assert render('{{len .Args}} {{len .Config.Labels}} {{len "héllo"}}', IMAGE) == "2 2 6"


def test_index_with_several_keys():
    assert render('{{index . "a" 1 "b"}}', {"a": [0, {"b": "deep"}]}) == "deep"


def test_index_of_a_missing_map_key_is_no_value():
    assert render('{{index .Config.Labels "nope"}}', IMAGE) == "<no value>"


def test_slice_of_list_and_string():
    assert render('{{slice .Args 1}} {{slice "abcdef" 1 3}}', IMAGE) == "[echo hi] bc"


def test_comparisons():
    assert render("{{eq 1 1}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 3 2}}", None) == \
        "true true true true false true"


def test_eq_with_several_values_is_any_of():
    assert render('{{eq .State.Status "exited" "running"}}', IMAGE) == "true"


def test_eq_compares_ints_and_floats():
    assert render("{{eq 1 1.0}}", None) == "true"


def test_print_spaces_only_between_non_strings():
    assert render('{{print 1 2 "a" "b" 3}}', None) == "1 2ab3"


def test_println_ends_with_newline():
    assert render('{{println "a" 1}}', None) == "a 1\n"


@pytest.mark.parametrize("fmt, args, text", [
    ('"%s"', '"x"', "x"), ('"%d"', "42", "42"), ('"%5s|"', '"ab"', "   ab|"),
    ('"%-5s|"', '"ab"', "ab   |"), ('"%q"', '"a\\"b"', '"a\\"b"'), ('"%t"', "true", "true"),
    ('"%x"', "255", "ff"), ('"%05d"', "42", "00042"), ('"%.2f"', "3.14159", "3.14"),
    ('"%v"', ".Args", "[-c echo hi]"), ('"%v"', ".Config.Labels",
                                         "map[maintainer:Jane <jane@example.com> version:1]"),
    ('"100%%"', "", "100%"), ('"%d"', '"x"', "%!d(string=x)"), ('"%s %s"', '"a"', "a %!s(MISSING)"),
])
def test_printf_verbs(fmt, args, text):
    assert render(f"{{{{printf {fmt} {args}}}}}", IMAGE) == text


# -- errors ------------------------------------------------------------------------------

def test_template_error_is_a_usage_error():
    assert issubclass(TemplateError, UsageError)


def test_unclosed_action_is_an_error():
    assert "unclosed action" in err("{{.Id")


def test_unclosed_comment_is_an_error():
    assert "unclosed comment" in err("{{/* x")


def test_unknown_function_is_an_error():
    assert 'function "foo" not defined' in err("{{foo .Id}}")


def test_unexpected_end_is_an_error():
    assert "unexpected {{end}}" in err("a{{end}}")


def test_unexpected_else_is_an_error():
    assert "unexpected {{else}}" in err("{{else}}")


def test_missing_end_is_an_error():
    assert "{{if}} has no {{end}}" in err("{{if .Id}}x")


def test_stray_brace_in_action_is_an_error():
    assert 'unexpected "}"' in err("{{ } }}")


def test_empty_action_is_an_error():
    assert "missing value for command" in err("{{}}")


def test_undefined_variable_is_an_error():
    assert 'undefined variable "$nope"' in err("{{$nope}}")


def test_break_outside_range_is_an_error():
    assert "{{break}} outside {{range}}" in err("{{break}}")


def test_too_many_declarations_is_an_error():
    assert "too many declarations" in err("{{$a, $b := 1}}")


def test_define_is_not_supported():
    assert "not supported" in err('{{define "x"}}{{end}}')


def test_parse_error_names_the_line():
    assert err("ok\nok\n{{nope}}").startswith("template: line 3:")


def test_wrong_argument_count_is_an_error():
    assert "wrong number of args for len: want 1 got 2" in err("{{len .Args .Args}}")


def test_field_of_a_string_is_an_error():
    assert "can't evaluate field Foo in type string" in err("{{.Id.Foo}}")


def test_field_of_a_list_is_an_error():
    assert "can't evaluate field Foo in type []interface {}" in err("{{.Args.Foo}}")


def test_index_out_of_range_is_an_error():
    assert "index out of range: 5" in err("{{index .RepoTags 5}}")


def test_error_names_the_failing_command():
    assert "at <index .RepoTags 5>" in err("{{index .RepoTags 5}}")


def test_len_of_an_int_is_an_error():
    assert "len of type int" in err("{{len .Size}}")


def test_argument_to_a_field_is_an_error():
    assert "can't give argument to non-function .Id" in err("{{.Id .Size}}")


def test_comparing_string_with_int_is_an_error():
    assert "incompatible types for comparison" in err('{{eq .Size "x"}}')


def test_join_of_a_string_is_an_error():
    assert "error calling join" in err('{{join .Id ","}}')


def test_literal_in_later_pipeline_stage_is_an_error():
    assert "non executable command in pipeline stage 2" in err('{{.Id | "x"}}')


def test_range_over_a_string_is_an_error():
    assert "range can't iterate over" in err("{{range .Id}}{{end}}")


# -- render_rows: docker's list formatting -----------------------------------------------

ROWS = [
    {"ID": "abc123", "Image": "busybox", "Names": "web"},
    {"ID": "def4567890ab", "Image": "alpine:3", "Names": "db-long-name"},
]
HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Names": "NAMES"}


def test_rows_without_table_render_one_line_each():
    assert render_rows("{{.Names}}", ROWS, HEADERS) == ["web", "db-long-name"]


def test_rows_without_table_are_not_aligned():
    assert render_rows(r"{{.ID}}\t{{.Names}}", ROWS, HEADERS) == \
        ["abc123\tweb", "def4567890ab\tdb-long-name"]


def test_literal_backslash_n_means_newline():
    assert render_rows(r"{{.ID}}\n", ROWS[:1], HEADERS) == ["abc123\n"]


def test_table_adds_a_header_and_aligns_columns():
    assert render_rows(r"table {{.ID}}\t{{.Image}}\t{{.Names}}", ROWS, HEADERS) == [
        "CONTAINER ID   IMAGE      NAMES",
        "abc123         busybox    web",
        "def4567890ab   alpine:3   db-long-name",
    ]


def test_table_columns_are_at_least_ten_wide():
    assert render_rows(r"table {{.Names}}\t{{.ID}}", [{"Names": "a", "ID": "b"}],
                       {"Names": "N", "ID": "I"}) == ["N         I", "a         b"]


def test_table_header_alone_when_there_are_no_rows():
    assert render_rows(r"table {{.ID}}\t{{.Names}}", [], HEADERS) == ["CONTAINER ID   NAMES"]


def test_bare_table_shows_every_header_column():
    assert render_rows("table", ROWS, HEADERS) == [
        "CONTAINER ID   IMAGE      NAMES",
        "abc123         busybox    web",
        "def4567890ab   alpine:3   db-long-name",
    ]


def test_table_header_ignores_docker_functions():
    assert render_rows(r"table {{.Names | upper}}\t{{json .ID}}", ROWS[:1], HEADERS) == \
        ["NAMES     CONTAINER ID", 'WEB       "abc123"']


def test_table_header_of_an_unknown_field_is_empty():
    assert render_rows(r"table {{.Nope}}|{{.ID}}", [], HEADERS) == ["|CONTAINER ID"]


def test_json_format_prints_one_object_per_row():
    assert render_rows("json", ROWS, HEADERS) == [
        '{"ID":"abc123","Image":"busybox","Names":"web"}',
        '{"ID":"def4567890ab","Image":"alpine:3","Names":"db-long-name"}',
    ]


def test_bad_row_template_is_an_error():
    with pytest.raises(TemplateError):
        render_rows("table {{.ID", ROWS, HEADERS)


def test_a_parsed_template_renders_many_values():
    template = parse("<{{.}}>")
    assert [template.execute(v) for v in (1, "a", None)] == ["<1>", "<a>", "<<no value>>"]
