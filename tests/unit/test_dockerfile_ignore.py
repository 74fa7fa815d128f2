"""build/ignore.py: .dockerignore with moby/patternmatcher's rules, including the
example table of Docker's documentation."""

from __future__ import annotations

import time

import pytest

from rootless.build.errors import DockerfileError
from rootless.build.ignore import DockerIgnore

DOCS_EXAMPLE = "# comment\n*/temp*\n*/*/temp*\ntemp?\n"


# -- the documentation's example table -----------------------------------------------------

def test_docs_star_slash_temp_excludes_temp_names_in_immediate_subdirectories():
    ignore = DockerIgnore(DOCS_EXAMPLE)
    assert ignore.excluded("somedir/temporary.txt")
    assert ignore.excluded("somedir/temp")


def test_docs_two_levels_pattern_excludes_temp_names_two_levels_down():
    assert DockerIgnore(DOCS_EXAMPLE).excluded("somedir/subdir/temporary.txt")


def test_docs_question_mark_pattern_excludes_one_character_extensions_at_the_root():
    ignore = DockerIgnore(DOCS_EXAMPLE)
    assert ignore.excluded("tempa") and ignore.excluded("tempb")


def test_docs_example_keeps_everything_else():
    ignore = DockerIgnore(DOCS_EXAMPLE)
    for path in ("temp", "temporary.txt", "a/b/c/temp", "somedir/other", "tempab"):
        assert not ignore.excluded(path), path


def test_a_comment_line_is_not_a_pattern():
    assert not DockerIgnore("# comment\n").excluded("# comment")


def test_a_hash_after_leading_blanks_is_a_pattern_not_a_comment():
    # ignorefile.ReadAll tests for "#" before trimming
    assert DockerIgnore("  #keep\n").excluded("#keep")


# -- cleaning ------------------------------------------------------------------------------

def test_patterns_are_relative_to_the_context_root_with_or_without_a_leading_slash():
    for pattern in ("/foo/bar", "foo/bar", "./foo/bar", "foo//bar/", "foo/./bar",
                    "foo/x/../bar"):
        ignore = DockerIgnore(pattern)
        assert ignore.excluded("foo/bar"), pattern
        assert not ignore.excluded("x/foo/bar"), pattern


def test_blank_lines_and_surrounding_blanks_are_ignored():
    ignore = DockerIgnore("\n   \n  *.log  \n")
    assert ignore.excluded("a.log") and not ignore.excluded("a.txt")


def test_a_plain_name_only_matches_at_the_root():
    ignore = DockerIgnore("node_modules")
    assert ignore.excluded("node_modules")
    assert not ignore.excluded("src/node_modules")


def test_crlf_lines_are_read():
    assert DockerIgnore("*.log\r\n*.tmp\r\n").excluded("a.tmp")


# -- wildcards -----------------------------------------------------------------------------

def test_double_star_matches_any_number_of_directories_including_none():
    ignore = DockerIgnore("**/*.go")
    assert ignore.excluded("main.go")
    assert ignore.excluded("a/b/c/main.go")
    assert not ignore.excluded("main.gox")


def test_double_star_in_the_middle_matches_zero_or_more_directories():
    ignore = DockerIgnore("a/**/z")
    assert ignore.excluded("a/z") and ignore.excluded("a/b/c/z")
    assert not ignore.excluded("b/z")


def test_trailing_double_star_matches_everything_inside_but_not_the_directory():
    ignore = DockerIgnore("build/**")
    assert ignore.excluded("build/x/y")
    assert not ignore.excluded("build")


def test_star_does_not_cross_a_slash():
    ignore = DockerIgnore("*.txt")
    assert ignore.excluded("a.txt") and not ignore.excluded("dir/a.txt")


def test_character_classes_match_one_character():
    ignore = DockerIgnore("file[0-9].txt")
    assert ignore.excluded("file1.txt") and not ignore.excluded("filex.txt")


def test_a_backslash_escapes_a_wildcard():
    ignore = DockerIgnore("a\\*b")
    assert ignore.excluded("a*b") and not ignore.excluded("axb")


def test_regex_characters_in_names_are_literal():
    ignore = DockerIgnore("a.b+(c)|{d}$^")
    assert ignore.excluded("a.b+(c)|{d}$^") and not ignore.excluded("aXb+(c)|{d}$^")


# -- directories and exceptions ------------------------------------------------------------

def test_a_pattern_matching_a_directory_excludes_everything_under_it():
    ignore = DockerIgnore("*/temp*")
    assert ignore.excluded("somedir/temp/deep/file")


def test_an_exception_re_includes_a_file():
    # the docs: *.md then !README.md: every markdown file but README.md is excluded
    ignore = DockerIgnore("*.md\n!README.md\n")
    assert ignore.excluded("CHANGES.md") and not ignore.excluded("README.md")


def test_the_last_matching_pattern_wins_exception_first():
    # the docs: *.md, !README*.md, README-secret.md: no README but README-secret.md
    ignore = DockerIgnore("*.md\n!README*.md\nREADME-secret.md\n")
    assert not ignore.excluded("README.md") and not ignore.excluded("README-x.md")
    assert ignore.excluded("README-secret.md")


def test_the_last_matching_pattern_wins_exception_last():
    # the docs: *.md, README-secret.md, !README*.md: every README is included
    ignore = DockerIgnore("*.md\nREADME-secret.md\n!README*.md\n")
    assert not ignore.excluded("README-secret.md") and ignore.excluded("other.md")


def test_exclude_everything_then_include_some():
    # the docs: "*" first, then exceptions, to list what to include
    ignore = DockerIgnore("*\n!src\n!Dockerfile\n")
    assert ignore.excluded("docs/x") and ignore.excluded(".git/config")
    assert not ignore.excluded("src/main.c") and not ignore.excluded("Dockerfile")


def test_an_exception_inside_an_excluded_directory_re_includes_it():
    ignore = DockerIgnore("vendor\n!vendor/keep\n")
    assert ignore.excluded("vendor/other/x")
    assert not ignore.excluded("vendor/keep") and not ignore.excluded("vendor/keep/x")


def test_dockerfile_and_dockerignore_are_not_special_cased_here():
    ignore = DockerIgnore("Dockerfile\n.dockerignore\n")
    assert ignore.excluded("Dockerfile") and ignore.excluded(".dockerignore")


def test_the_context_root_is_never_excluded():
    assert not DockerIgnore("*\n").excluded(".")


# -- whether the walker must descend -------------------------------------------------------

def test_might_include_under_is_true_when_an_exception_reaches_inside():
    ignore = DockerIgnore("vendor\n!vendor/keep/*.go\n")
    assert ignore.might_include_under("vendor")
    assert ignore.might_include_under("vendor/keep")


def test_might_include_under_is_false_for_a_directory_no_exception_reaches():
    ignore = DockerIgnore("vendor\n!vendor/keep\n")
    assert not ignore.might_include_under("vendor/other")
    assert not ignore.might_include_under("docs")


def test_might_include_under_is_false_without_exceptions():
    assert not DockerIgnore("*\n").might_include_under("src")


def test_might_include_under_follows_a_double_star_exception_anywhere():
    ignore = DockerIgnore("*\n!**/*.py\n")
    assert ignore.might_include_under("a/b/c")


# -- bad patterns --------------------------------------------------------------------------

def test_a_lone_exclamation_mark_is_dockers_error_with_the_line():
    with pytest.raises(DockerfileError) as info:
        DockerIgnore("*.log\n!\n")
    assert str(info.value) == '.dockerignore:2: illegal exclusion pattern: "!"'


@pytest.mark.parametrize("pattern", ["file[", "a[]b", "x\\"])
def test_a_malformed_glob_is_an_error_naming_the_line(pattern):
    with pytest.raises(DockerfileError) as info:
        DockerIgnore(f"ok\n{pattern}\n")
    assert str(info.value).startswith(".dockerignore:2: syntax error in pattern")


def test_a_leading_double_star_then_a_plain_name_matches_as_a_suffix_as_docker_does():
    # patternmatcher's suffixMatch: "**foo" is any path ending in "foo"
    ignore = DockerIgnore("**foo")
    assert ignore.excluded("xfoo") and ignore.excluded("a/bfoo")
    assert not ignore.excluded("foox")


# -- hostile patterns ----------------------------------------------------------------------

def test_a_backtracking_bomb_pattern_is_matched_in_linear_time():
    # Go's RE2 is linear; a backtracking regex would take hours on this
    ignore = DockerIgnore("*a*a*a*a*a*a*a*a*a*a*a*a*b\n")
    started = time.monotonic()
    assert not ignore.excluded("a" * 4000)
    assert ignore.excluded("a" * 40 + "b")
    assert time.monotonic() - started < 5


def test_a_pattern_of_thousands_of_stars_is_matched_quickly():
    ignore = DockerIgnore("*" * 50_000 + "b\n")  # "**" again and again: any directories
    started = time.monotonic()
    assert ignore.excluded("x/y/b") and not ignore.excluded("a" * 4000)
    assert time.monotonic() - started < 5


def test_a_line_over_64k_is_dockers_scanner_error():
    with pytest.raises(DockerfileError) as info:
        DockerIgnore("ok\n" + "a" * 70_000 + "\n")
    assert str(info.value) == ".dockerignore:2: bufio.Scanner: token too long"
