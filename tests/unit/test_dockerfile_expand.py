"""build/expand.py: Docker's variable substitution in Dockerfile words (buildkit's
shell/lex.go), with the Dockerfile reference's "Environment replacement" examples."""

from __future__ import annotations

import random

import pytest

from rootless.build.expand import (
    ExpandError,
    expand_heredoc,
    expand_word,
    expand_words,
    heredoc_name,
    raw_words,
)

ENV = {"FOO": "/bar", "EMPTY": "", "SPACED": "a  b", "str": "foobarbaz"}


def fails(word: str, env=ENV) -> str:
    with pytest.raises(ExpandError) as info:
        expand_word(word, env)
    return str(info.value)


# -- the reference's examples --------------------------------------------------------------

def test_dollar_name_and_braced_name_are_the_same():
    assert expand_word("$FOO", ENV) == expand_word("${FOO}", ENV) == "/bar"


def test_braces_delimit_a_name_followed_by_name_characters():
    assert expand_word("${FOO}_bar", ENV) == "/bar_bar"
    assert expand_word("$FOO_bar", ENV) == ""


def test_workdir_and_add_examples_expand_to_the_value():
    # ENV FOO=/bar; WORKDIR ${FOO} -> /bar; ADD . $FOO -> /bar
    assert expand_word("${FOO}", ENV) == "/bar"
    assert expand_words(". $FOO", ENV) == [".", "/bar"]


def test_an_escaped_dollar_is_a_literal_dollar():
    # COPY \$FOO /quux -> COPY $FOO /quux
    assert expand_words("\\$FOO /quux", ENV) == ["$FOO", "/quux"]
    assert expand_word("\\${FOO}", ENV) == "${FOO}"


def test_colon_dash_gives_the_word_when_unset_or_empty():
    assert expand_word("${NOPE:-word}", ENV) == "word"
    assert expand_word("${EMPTY:-word}", ENV) == "word"
    assert expand_word("${FOO:-word}", ENV) == "/bar"


def test_dash_gives_the_word_only_when_unset():
    assert expand_word("${NOPE-word}", ENV) == "word"
    assert expand_word("${EMPTY-word}", ENV) == ""


def test_colon_plus_gives_the_word_when_set_and_not_empty():
    assert expand_word("${FOO:+word}", ENV) == "word"
    assert expand_word("${EMPTY:+word}", ENV) == ""
    assert expand_word("${NOPE:+word}", ENV) == ""


def test_plus_gives_the_word_when_set_even_if_empty():
    assert expand_word("${EMPTY+word}", ENV) == "word"
    assert expand_word("${NOPE+word}", ENV) == ""


def test_the_word_of_a_modifier_may_hold_variables():
    assert expand_word("${NOPE:-$FOO/x}", ENV) == "/bar/x"
    assert expand_word("${NOPE:-${EMPTY:-deep}}", ENV) == "deep"


def test_question_mark_with_an_unset_variable_is_an_error_naming_it():
    assert fails("${NOPE?}").endswith("NOPE: is not allowed to be unset")
    assert fails("${NOPE:?}").endswith("NOPE: is not allowed to be unset")


def test_colon_question_mark_with_an_empty_variable_is_an_error():
    assert fails("${EMPTY:?}").endswith("EMPTY: is not allowed to be empty")
    assert expand_word("${EMPTY?}", ENV) == ""


def test_question_mark_error_carries_the_given_message():
    assert fails("${NOPE:?set NOPE to the release}").endswith(
        "NOPE: set NOPE to the release")


def test_question_mark_with_a_set_variable_is_its_value():
    assert expand_word("${FOO:?}", ENV) == "/bar"


def test_pattern_removal_from_the_start_shortest_and_longest():
    # the reference: str=foobarbaz ${str#f*b} -> arbaz, ${str##f*b} -> az
    assert expand_word("${str#f*b}", ENV) == "arbaz"
    assert expand_word("${str##f*b}", ENV) == "az"


def test_pattern_removal_from_the_end_shortest_and_longest():
    # ${string%b*} -> foobar, ${string%%b*} -> foo
    assert expand_word("${str%b*}", ENV) == "foobar"
    assert expand_word("${str%%b*}", ENV) == "foo"


def test_pattern_replacement_first_and_all():
    # ${string/ba/fo} -> fooforbaz, ${string//ba/fo} -> fooforfoz
    assert expand_word("${str/ba/fo}", ENV) == "fooforbaz"
    assert expand_word("${str//ba/fo}", ENV) == "fooforfoz"


def test_escaped_wildcards_in_a_pattern_are_literal():
    assert expand_word("${X#a\\*}", {"X": "a*b"}) == "b"
    assert expand_word("${X#a\\*}", {"X": "axb"}) == "axb"


def test_a_workdir_built_from_a_variable_and_literal_segments():
    # ENV DIRPATH=/first; WORKDIR $DIRPATH/second; WORKDIR third -> /first/second/third
    env = {"DIRPATH": "/first"}
    assert expand_word("$DIRPATH/second", env) == "/first/second"
    assert expand_word("${DIRPATH}/second/third", env) == "/first/second/third"


def test_an_unknown_variable_expands_to_nothing():
    # WORKDIR $DIRPATH/$DIRNAME with only DIRPATH set: buildkit gives "/path/"
    assert expand_word("$DIRPATH/$DIRNAME", {"DIRPATH": "/path"}) == "/path/"


# -- quoting -------------------------------------------------------------------------------

def test_single_quotes_keep_everything_literal():
    assert expand_word("'$FOO \\n \"x\"'", ENV) == '$FOO \\n "x"'


def test_double_quotes_expand_and_keep_blanks():
    assert expand_word('"a  $FOO  b"', ENV) == "a  /bar  b"


def test_backslash_in_double_quotes_escapes_only_quote_dollar_and_itself():
    assert expand_word('"\\" \\$ \\\\ \\n"', ENV) == '" $ \\ \\n'


def test_backslash_outside_quotes_makes_the_next_character_literal():
    # the reference: ENV MY_DOG=Rex\ The\ Dog
    assert expand_word("Rex\\ The\\ Dog", ENV) == "Rex The Dog"


def test_a_trailing_lone_escape_is_dropped():
    assert expand_word("abc\\", ENV) == "abc"


def test_the_escape_directive_changes_the_escape_character():
    assert expand_word("c:\\path `$FOO", ENV, escape="`") == "c:\\path $FOO"


def test_a_value_with_dollar_or_quotes_is_never_rescanned():
    env = {"EVIL": "$FOO '\"x"}
    assert expand_word("$EVIL", env) == "$FOO '\"x"


def test_an_unbalanced_double_quote_is_an_error():
    assert fails('"abc').endswith("unexpected end of statement while looking for matching "
                                  "double-quote")


def test_an_unbalanced_single_quote_is_an_error():
    assert fails("'abc").endswith("unexpected end of statement while looking for matching "
                                  "single-quote")


def test_errors_name_the_word_as_docker_does():
    assert fails("${NOPE?}") == 'failed to process "${NOPE?}": NOPE: is not allowed to be unset'


@pytest.mark.parametrize("word, message", [
    ("${FOO", "syntax error: missing '}'"),
    ("${}", "syntax error: bad substitution"),
    ("${:-x}", "syntax error: bad substitution"),
    ("${FOO:-x", "syntax error: missing '}'"),
    ("${FOO:x}", "unsupported modifier (:x) in substitution"),
    ("${FOO:#x}", "unsupported modifier (:#) in substitution"),
    ("${FOO/x", "syntax error: missing '/' in ${}"),
])
def test_malformed_substitutions_are_dockers_errors(word, message):
    assert fails(word).endswith(message)


def test_a_lone_dollar_stays_a_dollar():
    assert expand_word("cost: $ 5 $", ENV) == "cost: $ 5 $"


# -- words ---------------------------------------------------------------------------------

def test_words_split_on_unquoted_blanks():
    assert expand_words(' a "b c"  d\te ', ENV) == ["a", "b c", "d", "e"]


def test_an_unquoted_variable_value_splits_into_words_and_a_quoted_one_does_not():
    assert expand_words("$SPACED", ENV) == ["a", "b"]
    assert expand_words('"$SPACED"', ENV) == ["a  b"]


def test_an_empty_quoted_word_is_dropped_as_docker_drops_it():
    assert expand_words('a "" b', ENV) == ["a", "b"]


def test_an_escaped_blank_joins_words():
    assert expand_words("a\\ b c", ENV) == ["a b", "c"]


# -- heredoc helpers -----------------------------------------------------------------------

def test_a_heredoc_body_expands_variables_but_keeps_quotes():
    assert expand_heredoc('echo "hello ${FOO}" \'$FOO\'\n', ENV) == \
        "echo \"hello /bar\" '/bar'\n"


def test_raw_words_keep_quotes_escapes_and_variables():
    assert raw_words('cat <<"EOF" > "a b" \\$X $Y') == ["cat", '<<"EOF"', ">", '"a b"',
                                                        "\\$X", "$Y"]


def test_heredoc_name_unquotes_and_reports_whether_the_body_expands():
    assert heredoc_name("EOF") == ("EOF", True)
    assert heredoc_name('"EOF"') == ("EOF", False)
    assert heredoc_name("two words") is None


# -- hostile input -------------------------------------------------------------------------

def test_a_megabyte_word_expands_quickly_and_whole():
    assert len(expand_word("a" * 1_000_000 + "$FOO", ENV)) == 1_000_004


def test_deep_nesting_is_an_error_not_a_crash():
    assert "too deeply nested" in fails("${A:-" * 5000)


def test_random_words_give_a_string_or_an_expand_error():
    rng = random.Random(11)
    alphabet = "$ {}:-+?#%/*\\'\"`aZ_09\t"
    for _ in range(5000):
        word = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        try:
            assert isinstance(expand_word(word, ENV), str)
            assert isinstance(expand_words(word, ENV), list)
        except ExpandError:
            pass
