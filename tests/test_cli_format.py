"""`--format` Go templates on the real console script: `image inspect`, `ps` and
`system info`, as Docker's documentation uses them. A bad template is a usage error:
one line, no traceback, nothing on stdout."""

from __future__ import annotations

import json

from helpers import assert_error, ok

# ---- image inspect ----


def test_inspect_format_prints_one_field(rootless, busybox):
    [data] = json.loads(ok(rootless("image", "inspect", busybox)))
    assert ok(rootless("image", "inspect", "--format", "{{.Id}}", busybox)) == \
        data["Id"] + "\n"


def test_inspect_short_format_option(rootless, busybox):
    assert ok(rootless("image", "inspect", "-f", "{{.RepoTags}}", busybox)) == \
        "[busybox:latest]\n"


def test_inspect_format_json_of_a_nested_field(rootless, busybox):
    [data] = json.loads(ok(rootless("image", "inspect", busybox)))
    out = ok(rootless("image", "inspect", "--format", "{{json .Config.Cmd}}", busybox))
    assert json.loads(out) == data["Config"]["Cmd"]
    assert " " not in out.strip()


def test_inspect_format_range_over_tags(rootless, busybox):
    out = ok(rootless("image", "inspect", "--format",
                      "{{range .RepoTags}}tag={{.}};{{end}}", busybox))
    assert out == "tag=busybox:latest;\n"


def test_inspect_format_prints_one_line_per_image(rootless, busybox):
    out = ok(rootless("image", "inspect", "--format", "{{index .RepoTags 0}}",
                      busybox, busybox))
    assert out == "busybox:latest\nbusybox:latest\n"


def test_inspect_bad_template_is_a_one_line_error(rootless, busybox):
    result = rootless("image", "inspect", "--format", "{{.Id", busybox)
    assert_error(result, 125, "template", "unclosed action")
    assert result.stdout == ""


def test_inspect_unknown_function_is_a_one_line_error(rootless, busybox):
    result = rootless("image", "inspect", "--format", "{{nope .Id}}", busybox)
    assert_error(result, 125, 'function "nope" not defined')


def test_inspect_execution_error_is_a_one_line_error(rootless, busybox):
    result = rootless("image", "inspect", "--format", "{{index .RepoTags 7}}", busybox)
    assert_error(result, 125, "index out of range: 7")


def test_inspect_bad_template_fails_before_image_lookup(rootless):
    assert_error(rootless("image", "inspect", "--format", "{{end}}", "nosuchimage"),
                 125, "unexpected {{end}}")


# ---- ps ----


def test_ps_format_names(rootless, busybox):
    ok(rootless("run", "--name", "web", busybox, "true"))
    assert ok(rootless("ps", "-a", "--format", "{{.Names}}")) == "web\n"


def test_ps_format_fields_of_an_exited_container(rootless, busybox):
    ok(rootless("run", "--name", "web", busybox, "true"))
    out = ok(rootless("ps", "-a", "--format", "{{.Image}}|{{.State}}|{{.Command}}|{{.Status}}"))
    image, state, command, status = out.strip().split("|")
    assert (image, state, command) == ("busybox:latest", "exited", '"true"')
    assert status.startswith("Exited (0)")


def test_ps_format_id_is_the_short_id(rootless, busybox):
    ok(rootless("run", "--name", "web", busybox, "true"))
    short = ok(rootless("ps", "-a", "-q")).strip()
    assert ok(rootless("ps", "-a", "--format", "{{.ID}}")).strip() == short


def test_ps_format_table_has_docker_headers_and_aligned_columns(rootless, busybox):
    ok(rootless("run", "--name", "web", busybox, "true"))
    ok(rootless("run", "--name", "a-much-longer-name", busybox, "true"))
    lines = ok(rootless("ps", "-a", "--format", r"table {{.ID}}\t{{.Names}}")).splitlines()
    assert lines[0].startswith("CONTAINER ID   NAMES")
    assert sorted(line.split()[1] for line in lines[1:]) == ["a-much-longer-name", "web"]
    assert {line.rindex(line.split()[-1]) for line in lines} == {len("CONTAINER ID   ")}


def test_ps_format_table_alone_is_the_default_table(rootless, busybox):
    ok(rootless("run", "--name", "web", busybox, "true"))
    header = ok(rootless("ps", "-a", "--format", "table")).splitlines()[0]
    assert header.split("   ")[0] == "CONTAINER ID"
    assert header.split()[-1] == "NAMES"


def test_ps_format_table_with_no_containers_prints_the_header(rootless):
    assert ok(rootless("ps", "--format", r"table {{.ID}}\t{{.Status}}")) == \
        "CONTAINER ID   STATUS\n"


def test_ps_format_json_prints_one_object_per_line(rootless, busybox):
    ok(rootless("run", "--name", "web", busybox, "true"))
    ok(rootless("run", "--name", "db", busybox, "true"))
    lines = ok(rootless("ps", "-a", "--format", "json")).splitlines()
    objects = [json.loads(line) for line in lines]
    assert sorted(o["Names"] for o in objects) == ["db", "web"]
    assert all(o["Image"] == "busybox:latest" for o in objects)


def test_ps_quiet_wins_over_format(rootless, busybox):
    ok(rootless("run", "--name", "web", busybox, "true"))
    assert ok(rootless("ps", "-a", "-q", "--format", "{{.Names}}")) == \
        ok(rootless("ps", "-a", "-q"))


def test_ps_bad_template_is_a_one_line_error(rootless):
    assert_error(rootless("ps", "--format", "{{if .ID}}"), 125, "has no {{end}}")


# ---- system info ----


def test_system_info_format_template(rootless):
    data = json.loads(ok(rootless("system", "info", "--format", "json")))
    assert ok(rootless("system", "info", "--format", "{{.rootfs}}")) == data["rootfs"] + "\n"


def test_system_info_format_json_function(rootless):
    data = json.loads(ok(rootless("system", "info", "--format", "json")))
    out = ok(rootless("system", "info", "--format", "{{json .network_helpers}}"))
    assert json.loads(out) == data["network_helpers"]


def test_system_info_bad_template_is_a_one_line_error(rootless):
    assert_error(rootless("system", "info", "--format", "{{.store.x}}"),
                 125, "can't evaluate field x in type string")
