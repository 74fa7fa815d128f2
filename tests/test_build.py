"""`rootless build` as docker build: the Dockerfile reference's examples with a local
busybox base, every instruction's effect on the image, multi-stage, ONBUILD, the
cache, .dockerignore, and bad input (a Docker-like message naming the file and line,
exit 1, nothing left but the cache of the steps that worked)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from helpers import ok

pytestmark = pytest.mark.container


def dockerfile(tmp_path: Path, text: str, **files: str | bytes) -> Path:
    context = tmp_path / "ctx"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(text)
    for name, content in files.items():
        path = context / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return context


def build(rootless, context: Path, *args: str, timeout: float = 180) -> str:
    result = ok(rootless("build", "-q", *args, str(context), timeout=timeout))
    image_id = result.strip().splitlines()[-1]
    assert image_id.startswith("sha256:"), result
    return image_id


def fails(result, code: int | None = None):
    """A refused build: non-zero (or `code`), no traceback."""
    detail = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode != 0 if code is None else result.returncode == code, detail
    assert "Traceback" not in result.stderr, detail
    return result


def config(rootless, image: str) -> dict:
    return json.loads(ok(rootless("image", "inspect", "--format", "{{json .Config}}",
                                  image)))


def test_workdir_is_relative_to_the_previous_one(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nWORKDIR /first\nWORKDIR second\n"
                               "WORKDIR third\nRUN pwd > /pwd.txt\n")
    image = build(rootless, ctx)
    assert ok(rootless("run", "--rm", image, "cat", "/pwd.txt")) == "/first/second/third\n"


def test_env_values_expand_with_the_values_before_the_instruction(rootless, busybox,
                                                                  tmp_path):
    # the reference's example: def=hello (abc was still hello), ghi=bye
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nENV abc=hello\nENV abc=bye def=$abc\n"
                               "ENV ghi=$abc\nRUN echo $abc $def $ghi > /out\n")
    image = build(rootless, ctx)
    assert ok(rootless("run", "--rm", image, "cat", "/out")) == "bye hello bye\n"
    env = config(rootless, image)["Env"]
    assert "abc=bye" in env and "def=hello" in env and "ghi=bye" in env


def test_entrypoint_and_cmd_defaults_and_their_overrides(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f'FROM {busybox}\nENTRYPOINT ["echo", "top"]\n'
                               'CMD ["-n", "default"]\n')
    image = build(rootless, ctx)
    assert ok(rootless("run", "--rm", image)) == "top -n default\n"
    assert ok(rootless("run", "--rm", image, "given")) == "top given\n"
    assert ok(rootless("run", "--rm", "--entrypoint", "echo", image, "other")) == "other\n"


def test_shell_form_cmd_runs_under_the_shell(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nENV WHO=world\nCMD echo hello $WHO\n")
    image = build(rootless, ctx)
    assert config(rootless, image)["Cmd"] == ["/bin/sh", "-c", "echo hello $WHO"]
    assert ok(rootless("run", "--rm", image)) == "hello world\n"


def test_config_instructions_land_in_dockers_format(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"""FROM {busybox}
LABEL a=1 "b c"="d e"
EXPOSE 80 53/udp
VOLUME ["/data"]
USER nobody
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD true
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo triggered
""")
    got = config(rootless, build(rootless, ctx))
    assert got["Labels"]["a"] == "1" and got["Labels"]["b c"] == "d e"
    assert got["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert got["Volumes"] == {"/data": {}}
    assert got["User"] == "nobody"
    assert got["StopSignal"] == "SIGINT"
    assert got["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000,
                                  "Timeout": 2_000_000_000, "Retries": 4}
    assert got["Shell"] == ["/bin/sh", "-ec"]
    assert got["OnBuild"] == ["RUN echo triggered"]


def test_copy_follows_dockers_destination_rules(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"""FROM {busybox}
COPY a.txt /single
COPY a.txt b.txt /many/
COPY dir /contents
WORKDIR /app
COPY a.txt .
COPY --chmod=600 a.txt /private
""", **{"a.txt": "A\n", "b.txt": "B\n", "dir__inner.txt": "I\n"})
    image = build(rootless, ctx)
    listing = ok(rootless("run", "--rm", image, "sh", "-c",
                          "cat /single /many/a.txt /many/b.txt /contents/inner.txt "
                          "/app/a.txt; stat -c %a /private"))
    assert listing == "A\nA\nB\nI\nA\n600\n"


def test_workdir_after_user_makes_its_missing_directories_the_users(rootless, busybox,
                                                                    tmp_path):
    """BuildKit's rule: a number is uid and gid; a name is looked up in /etc/passwd (root
    when not there); a group after ':' replaces the gid; what exists stays as it was."""
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nUSER 1000\nWORKDIR /var/app/data\n"
                               "USER user:users\nWORKDIR /var/app/data/logs\n"
                               "USER nobody\nWORKDIR /nb\nUSER ghost\nWORKDIR /ghost\n"
                               "USER 4321:nogroup\nWORKDIR /tmp\nWORKDIR /n\n")
    build(rootless, ctx, "-t", "workdirs:1")
    archive = tmp_path / "workdirs.tar"
    ok(rootless("save", "-o", str(archive), "workdirs:1"))
    owners = _image_entries(archive)
    assert owners["var"] == (0, 0, 0o755)  # there before: left alone
    assert owners["var/app"] == owners["var/app/data"] == (1000, 1000, 0o755)
    assert owners["var/app/data/logs"] == (1000, 100, 0o755)
    assert owners["nb"] == (65534, 65534, 0o755)
    assert owners["ghost"] == (0, 0, 0o755)
    assert owners["tmp"] == (0, 0, 0o1777)
    assert owners["n"] == (4321, 65534, 0o755)


def _image_entries(archive: Path) -> dict[str, tuple[int, int, int]]:
    """name -> (uid, gid, mode) of the saved image's files, its layers in order."""
    found: dict[str, tuple[int, int, int]] = {}
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        for name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(name)) as layer:
                for m in layer.getmembers():
                    found[m.name.strip("/").removeprefix("./")] = (m.uid, m.gid, m.mode)
    return found


def test_copy_chown_is_recorded_in_the_layer(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nCOPY --chown=1000:1000 a.txt /owned\n",
                     **{"a.txt": "A\n"})
    build(rootless, ctx, "-t", "owned:1")
    archive = tmp_path / "owned.tar"
    ok(rootless("save", "-o", str(archive), "owned:1"))
    owners = _layer_owners(archive)
    assert owners["owned"] == (1000, 1000)


def _layer_owners(archive: Path) -> dict[str, tuple[int, int]]:
    """name -> (uid, gid) of every file in the saved image's last layer."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        last = manifest[0]["Layers"][-1]
        with tarfile.open(fileobj=outer.extractfile(last)) as layer:
            return {m.name.lstrip("./"): (m.uid, m.gid) for m in layer.getmembers()}


def test_copy_parents_keeps_the_sources_own_path(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nCOPY --parents a/b/c.txt x/*.txt /dst/\n",
                     **{"a__b__c.txt": "c", "x__y.txt": "y"})
    image = build(rootless, ctx)
    names = ok(rootless("run", "--rm", image, "find", "/dst", "-type", "f")).split()
    assert sorted(names) == ["/dst/a/b/c.txt", "/dst/x/y.txt"]


def test_copy_exclude_leaves_out_what_it_names(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nCOPY --exclude=*.log src /dst\n",
                     **{"src__keep.txt": "k", "src__drop.log": "d", "src__sub__x.log": "x"})
    image = build(rootless, ctx)
    names = ok(rootless("run", "--rm", image, "find", "/dst", "-type", "f")).split()
    # .dockerignore's rules: `*.log` names the top level only (`**/*.log` would go deeper)
    assert sorted(names) == ["/dst/keep.txt", "/dst/sub/x.log"]


def test_dockerignore_excludes_and_exceptions_reinclude(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nCOPY . /ctx\n",
                     **{".dockerignore": "*.log\n!keep.log\nsecret\n", "a.log": "x",
                        "keep.log": "k", "secret__key": "s", "app.py": "p"})
    image = build(rootless, ctx)
    names = ok(rootless("run", "--rm", image, "sh", "-c", "cd /ctx && ls -A")).split()
    assert "app.py" in names and "keep.log" in names
    assert "a.log" not in names and "secret" not in names


def test_multi_stage_copies_and_binds_from_other_stages_and_skips_unused_ones(
        rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"""FROM {busybox} AS builder
RUN mkdir -p /out && echo built > /out/artifact
FROM {busybox} AS unused
RUN false
FROM {busybox}
COPY --from=builder /out/artifact /app/artifact
RUN --mount=type=bind,from=builder,source=out,target=/rw,rw touch /rw/new && ls /rw > /seen
RUN --mount=type=bind,from=builder,source=/out,target=/mnt \\
    --mount=type=bind,from={busybox},source=/etc/passwd,target=/passwd \\
    ls /mnt >> /seen && head -n 1 /passwd >> /seen && (touch /mnt/x 2>> /seen || true)
CMD ["cat", "/app/artifact"]
""")
    image = build(rootless, ctx)
    assert ok(rootless("run", "--rm", image)) == "built\n"
    # RUN --mount=type=bind,from=: a stage's or an image's files, read-only unless rw,
    # and what an rw step wrote is gone after it
    assert ok(rootless("run", "--rm", image, "sh", "-c", "cat /seen; for f in /rw/new "
                       "/mnt/x; do test -e $f && echo kept $f; done; true")) == \
        "artifact\nnew\nartifact\nroot:x:0:0:root:/root:/bin/sh\n" \
        "touch: /mnt/x: Read-only file system\n"


def test_target_builds_only_that_stage(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox} AS one\nRUN echo 1 > /stage\n"
                               f"FROM {busybox} AS two\nRUN false\n")
    image = build(rootless, ctx, "--target", "one")
    assert ok(rootless("run", "--rm", image, "cat", "/stage")) == "1\n"


def test_build_args_reach_arg_and_run(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"ARG BASE={busybox}\nFROM $BASE\nARG GREETING=hello\n"
                               "RUN echo $GREETING > /greeting\n")
    plain = build(rootless, ctx)
    assert ok(rootless("run", "--rm", plain, "cat", "/greeting")) == "hello\n"
    given = build(rootless, ctx, "--build-arg", "GREETING=hi")
    assert ok(rootless("run", "--rm", given, "cat", "/greeting")) == "hi\n"
    # ARG values are not kept in the image's environment
    assert not any(e.startswith("GREETING=") for e in config(rootless, given)["Env"])


def test_onbuild_triggers_run_in_the_child_build(rootless, busybox, tmp_path):
    base = dockerfile(tmp_path / "base", f"FROM {busybox}\nRUN mkdir -p /var/www/html\n"
                                         "ONBUILD ADD website.tar /var/www/html/\n")
    build(rootless, base, "-t", "web-base:1")
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>hello</h1>\n")
    child = dockerfile(tmp_path / "child", "FROM web-base:1\n")
    with tarfile.open(child / "website.tar", "w") as tar:
        tar.add(site / "index.html", arcname="index.html")
    image = build(rootless, child)
    assert ok(rootless("run", "--rm", image, "cat", "/var/www/html/index.html")) == \
        "<h1>hello</h1>\n"
    assert not config(rootless, image).get("OnBuild")


def test_a_second_build_uses_the_cache_and_gives_the_same_image(rootless, busybox,
                                                                 tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nRUN echo one > /one\nCOPY a.txt /a\n"
                               "ENV X=1\n", **{"a.txt": "A"})
    first = ok(rootless("build", str(ctx)))
    second = ok(rootless("build", str(ctx)))
    assert second.count("Using cache") == 3, second
    assert first.splitlines()[-1] == second.splitlines()[-1]


def test_a_changed_source_invalidates_its_step_and_the_ones_after(rootless, busybox,
                                                                  tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nRUN echo one > /one\nCOPY a.txt /a\n"
                               "RUN cat /a > /b\n", **{"a.txt": "A"})
    ok(rootless("build", str(ctx)))
    (ctx / "a.txt").write_text("changed")
    again = ok(rootless("build", str(ctx)))
    assert again.count("Using cache") == 1, again
    image = again.split("Successfully built ")[1].split()[0]
    assert ok(rootless("run", "--rm", image, "cat", "/b")) == "changed"


def test_a_run_binding_a_changed_stage_or_context_file_runs_again(rootless, busybox,
                                                                  tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox} AS src\nCOPY a.txt /a\nFROM {busybox}\n"
                               "RUN --mount=type=bind,from=src,source=/a,target=/s "
                               "cat /s > /from-stage\n"
                               "RUN --mount=type=bind,source=b.txt,target=/b "
                               "cat /b > /from-context\n", **{"a.txt": "A", "b.txt": "B"})
    ok(rootless("build", str(ctx)))
    (ctx / "a.txt").write_text("A2")
    again = ok(rootless("build", str(ctx)))
    assert again.count("Using cache") == 0, again
    (ctx / "b.txt").write_text("B2")
    third = ok(rootless("build", str(ctx)))
    assert third.count("Using cache") == 2, third  # src's COPY and the from=src RUN
    image = third.split("Successfully built ")[1].split()[0]
    assert ok(rootless("run", "--rm", image, "cat", "/from-stage", "/from-context")) == \
        "A2B2"


def test_a_changed_build_arg_invalidates_run_but_not_a_copy_that_does_not_use_it(
        rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nARG V\nCOPY a.txt /a\nENV E=fixed\n"
                               "COPY a.txt /$V.txt\nRUN echo $V > /v\n", **{"a.txt": "A"})
    ok(rootless("build", "--build-arg", "V=1", str(ctx)))
    again = ok(rootless("build", "--build-arg", "V=2", str(ctx)))
    # the ARG counts for RUN (its environment) and where a step expands it, nowhere else
    assert again.count("Using cache") == 2, again
    image = again.strip().splitlines()[-1].split()[-1]
    assert ok(rootless("run", "--rm", image, "sh", "-c", "cat /v; ls /2.txt")) == \
        "2\n/2.txt\n"


def test_no_cache_runs_every_step_again(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nRUN date +%s%N > /when\n")
    ok(rootless("build", str(ctx)))
    assert "Using cache" not in ok(rootless("build", "--no-cache", str(ctx)))


def test_image_prune_removes_the_build_cache(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nRUN echo one > /one\n")
    ok(rootless("build", str(ctx)))
    assert ok(rootless("images", "-q")).split() == ok(rootless("images", "-q", busybox)).split()
    ok(rootless("image", "prune", "-f"))
    assert "Using cache" not in ok(rootless("build", str(ctx)))


def test_tags_iidfile_and_quiet(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nLABEL x=y\n")
    iid = tmp_path / "iid"
    out = ok(rootless("build", "-q", "-t", "one:1", "-t", "two", "--iidfile", str(iid),
                      str(ctx)))
    assert out.strip() == iid.read_text()
    names = ok(rootless("images", "--format", "{{.Repository}}:{{.Tag}}")).split()
    assert "one:1" in names and "two:latest" in names


def test_dockerfile_from_stdin_and_context_from_a_tar(rootless, busybox, tmp_path):
    image = ok(rootless("build", "-q", "-", input=f"FROM {busybox}\nENV FROM_STDIN=1\n"))
    assert "FROM_STDIN=1" in config(rootless, image.strip())["Env"]
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nCOPY a.txt /a\n", **{"a.txt": "tarred"})
    archive = tmp_path / "ctx.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("Dockerfile", "a.txt"):
            tar.add(ctx / name, arcname=name)
    image = ok(rootless("build", "-q", "-", input=archive.read_bytes())).strip()
    assert ok(rootless("run", "--rm", image, "cat", "/a")) == "tarred"


def test_heredocs_in_run_and_copy(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"""FROM {busybox}
ENV NAME=world
RUN <<EOF
echo first > /h1
echo second >> /h1
EOF
COPY <<EOT /greeting
hello $NAME
EOT
""")
    image = build(rootless, ctx)
    assert ok(rootless("run", "--rm", image, "cat", "/h1", "/greeting")) == \
        "first\nsecond\nhello world\n"


def test_add_unpacks_a_local_tar(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nADD files.tar.gz /unpacked/\n"
                               "COPY files.tar.gz /kept.tar.gz\n")
    src = tmp_path / "f.txt"
    src.write_text("inside\n")
    with tarfile.open(ctx / "files.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="dir/f.txt")
    image = build(rootless, ctx)
    assert ok(rootless("run", "--rm", image, "sh", "-c",
                       "cat /unpacked/dir/f.txt; test -f /kept.tar.gz && echo kept")) == \
        "inside\nkept\n"


def test_a_tars_dot_entry_owns_where_it_lands_in_a_scratch_stage(rootless, tmp_path):
    """As moby's Untar applies a tar's '.' entry to the directory it unpacks into:
    the image's root (the layer's './' entry) at /, the landing directory elsewhere."""
    import io

    ctx = dockerfile(tmp_path, "FROM scratch\nADD root.tar /\nADD root.tar /opt/\n")
    with tarfile.open(ctx / "root.tar", "w") as tar:
        top = tarfile.TarInfo(".")
        top.type, top.mode, top.uid, top.gid = tarfile.DIRTYPE, 0o750, 1000, 1000
        tar.addfile(top)
        f = tarfile.TarInfo("./f")
        f.size, f.mode = 2, 0o644
        tar.addfile(f, io.BytesIO(b"f\n"))
    build(rootless, ctx, "-t", "dots:1")
    archive = tmp_path / "dots.tar"
    ok(rootless("save", "-o", str(archive), "dots:1"))
    entries = _image_entries(archive)
    assert entries["."] == entries["opt"] == (1000, 1000, 0o750)
    assert entries["f"] == entries["opt/f"] == (0, 0, 0o644)


def test_run_cache_mount_persists_between_builds_and_stays_out_of_the_layer(
        rootless, busybox, tmp_path):
    text = (f"FROM {busybox}\nARG N\nRUN --mount=type=cache,target=/cache "
            "echo $N >> /cache/log && cat /cache/log > /seen\n")
    ctx = dockerfile(tmp_path, text)
    build(rootless, ctx, "--build-arg", "N=1")
    image = build(rootless, ctx, "--build-arg", "N=2")
    assert ok(rootless("run", "--rm", image, "sh", "-c",
                       "cat /seen; ls -A /cache 2>/dev/null | wc -l")) == "1\n2\n0\n"


def test_secret_mount_is_readable_and_not_kept(rootless, busybox, tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cret")
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nRUN --mount=type=secret,id=tok "
                               "cat /run/secrets/tok > /copied-length && wc -c < "
                               "/run/secrets/tok > /copied-length\n")
    image = build(rootless, ctx, "--secret", f"id=tok,src={secret}")
    assert ok(rootless("run", "--rm", image, "sh", "-c",
                       "cat /copied-length; cat /run/secrets/tok 2>&1 || echo gone")
              ).split()[0] == "6"


# ---- bad input ----

def _no_leftovers(rootless, store: Path) -> None:
    assert ok(rootless("ps", "-a", "-q")) == ""
    assert not [p for p in (store / "tmp").iterdir()] if (store / "tmp").exists() else True


def test_an_unknown_instruction_names_the_file_and_line(rootless, busybox, tmp_path, store):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nFROB x\n")
    result = fails(rootless("build", str(ctx)), code=1)
    assert "Dockerfile:2" in result.stderr and "unknown instruction" in result.stderr.lower()
    _no_leftovers(rootless, store)


def test_a_missing_copy_source_is_named(rootless, busybox, tmp_path, store):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nCOPY nothere.txt /x\n")
    result = fails(rootless("build", str(ctx)), code=1)
    assert "nothere.txt" in result.stderr and "not found" in result.stderr
    _no_leftovers(rootless, store)


def test_a_failing_run_names_its_command_and_code_and_keeps_the_earlier_cache(
        rootless, busybox, tmp_path, store):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nRUN echo ok > /ok\nRUN exit 3\n")
    result = fails(rootless("build", str(ctx)), code=1)
    assert "Dockerfile:3" in result.stderr and "returned a non-zero code: 3" in result.stderr
    _no_leftovers(rootless, store)
    again = rootless("build", str(ctx))
    assert "Using cache" in again.stdout


def test_an_unknown_stage_in_copy_from_is_refused(rootless, busybox, tmp_path, store):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nCOPY --from=nosuchstage /x /y\n")
    result = fails(rootless("build", str(ctx)))
    assert "nosuchstage" in result.stderr
    _no_leftovers(rootless, store)


def test_an_unknown_target_is_refused(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox} AS a\n")
    result = fails(rootless("build", "--target", "zzz", str(ctx)))
    assert 'target stage "zzz" could not be found' in result.stderr


def test_a_required_arg_left_unset_is_refused(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nARG NEEDED\n"
                               'ENV X="${NEEDED:?must be set}"\n')
    result = fails(rootless("build", str(ctx)), code=1)
    assert "Dockerfile:3" in result.stderr and "must be set" in result.stderr


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_an_interrupted_run_step_leaves_no_container(rootless, busybox, tmp_path, store,
                                                     signum):
    import os
    import signal
    import time

    ctx = dockerfile(tmp_path, f"FROM {busybox}\nRUN touch /started && sleep 60\n")
    proc = rootless.popen("build", str(ctx))
    deadline = time.monotonic() + 30
    while "Running in" not in _peek_steps(rootless) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    # as a terminal's Ctrl-C: the whole foreground process group
    os.killpg(proc.pid, getattr(signal, signum))
    assert proc.wait(timeout=30) != 0
    _no_leftovers(rootless, store)


def _peek_steps(rootless) -> str:
    """'Running in' once the step's container is running (ps shows it)."""
    out = ok(rootless("ps", "--format", "{{.Names}}"))
    return "Running in" if "rootless-build-" in out else ""


def test_copy_from_stages_that_need_each_other_is_a_cycle(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox} AS a\nCOPY --from=b /x /x\n"
                               f"FROM {busybox} AS b\nCOPY --from=a /y /y\n")
    result = fails(rootless("build", str(ctx)), code=1)
    assert "circular dependency" in result.stderr


def test_env_takes_the_old_key_value_form_too(rootless, busybox, tmp_path):
    ctx = dockerfile(tmp_path, f"FROM {busybox}\nENV GREETING hello there\n")
    assert "GREETING=hello there" in config(rootless, build(rootless, ctx))["Env"]


def test_add_fetches_a_url_and_checks_its_checksum(rootless, busybox, tmp_path):
    import hashlib
    import http.server
    import threading

    payload = b"remote content\n"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Last-Modified", "Tue, 15 Nov 1994 08:12:31 GMT")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/files/remote.txt"
    digest = hashlib.sha256(payload).hexdigest()
    try:
        ctx = dockerfile(tmp_path, f"FROM {busybox}\nADD --checksum=sha256:{digest} {url} /dl/\n")
        image = build(rootless, ctx)
        assert ok(rootless("run", "--rm", image, "sh", "-c",
                           "cat /dl/remote.txt; stat -c '%a %Y' /dl/remote.txt")) == \
            "remote content\n600 784887151\n"
        bad = dockerfile(tmp_path / "bad", f"FROM {busybox}\nADD --checksum=sha256:{'0' * 64} "
                                           f"{url} /dl/\n")
        result = fails(rootless("build", str(bad)), code=1)
        assert "digest mismatch" in result.stderr
    finally:
        server.shutdown()


# ---- hostile sizes ----

def _build_peak_rss(rootless, context: Path, out: Path) -> tuple[str, int]:
    """Build `context`; its image id and the peak RSS (bytes) of the build and its
    children (wait4(2)'s rusage of that one command, not of the whole test run)."""
    import os
    import subprocess

    with open(out, "w+") as log:
        proc = rootless.popen("build", "-q", str(context), stdin=subprocess.DEVNULL,
                              stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        text = log.read()
    assert proc.returncode == 0, text
    return text.strip().splitlines()[-1], usage.ru_maxrss * 1024


def _serve_zeros(size: int):
    """An HTTP server on 127.0.0.1 whose every GET answers `size` zero bytes, sent in
    1 MiB writes; shut it down with .shutdown()."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            block, left = bytes(1 << 20), size
            while left:
                self.wfile.write(block[:min(left, len(block))])
                left -= min(left, len(block))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_add_tar_url_and_copy_from_stream_what_they_copy(rootless, busybox, tmp_path, store):
    """A 640 MiB sparse member of an ADDed tar, then COPY --from of it, and a 320 MiB
    URL: none is held in memory (the bound is well under each), and the URL's spool file
    is gone after the build."""
    import subprocess

    size, url_size = 640 << 20, 320 << 20
    server = _serve_zeros(url_size)
    url = f"http://127.0.0.1:{server.server_port}/zeros"
    ctx = dockerfile(tmp_path, f"FROM scratch AS big\nADD big.tar /\nADD {url} /zeros\n"
                               f"FROM {busybox}\nCOPY --from=big /big /copied\n"
                               "COPY --from=big /zeros /zeros\n")
    sparse = tmp_path / "big"
    with open(sparse, "wb") as f:
        f.truncate(size)
        f.seek(size - 5)
        f.write(b"tail\n")
    # GNU tar's sparse member: a few KiB in the context, 640 MiB when read
    subprocess.run(["tar", "-S", "-cf", str(ctx / "big.tar"), "-C", str(tmp_path), "big"],
                   check=True)
    sparse.unlink()
    try:
        image, peak = _build_peak_rss(rootless, ctx, tmp_path / "build.log")
    finally:
        server.shutdown()
    assert peak < 256 << 20, f"the build's peak RSS was {peak >> 20} MiB"
    assert ok(rootless("run", "--rm", image, "sh", "-c",
                       "stat -c %s /copied /zeros; tail -c 5 /copied")) == \
        f"{size}\n{url_size}\ntail\n"
    assert not list((store / "tmp").iterdir())


def test_a_sparse_member_larger_than_the_layer_limit_is_refused(rootless, busybox, tmp_path,
                                                                store):
    """A few KiB of tar declaring a 1 TiB sparse file reads as 1 TiB of zeros: the copy
    is counted against ROOTLESS_LAYER_LIMIT (and the disk's reserve) as it is written."""
    import subprocess

    ctx = dockerfile(tmp_path, f"FROM {busybox}\nADD huge.tar /\n")
    with open(tmp_path / "huge", "wb") as f:
        f.truncate(1 << 40)
    subprocess.run(["tar", "-S", "-cf", str(ctx / "huge.tar"), "-C", str(tmp_path), "huge"],
                   check=True)
    result = fails(rootless("build", str(ctx), env={**rootless.env,
                                                    "ROOTLESS_LAYER_LIMIT": "64M"}), code=1)
    assert "Dockerfile:2: ADD to / unpacks to more than 64 MiB (ROOTLESS_LAYER_LIMIT): " \
           "refused" in result.stderr
    _no_leftovers(rootless, store)
