"""rootless-oci: a runc-compatible OCI runtime over rootless's runtime core.

    rootless-oci [--root DIR] [--log FILE] [--log-format text|json] [--debug]
                 [--rootless true|false|auto] [--systemd-cgroup] [--cgroup-manager M]
                 VERB [OPTIONS] ARGS

runc's grammar, because podman (`--runtime`), containerd and Slurm (oci.conf) call it
as they call runc. Thin: parse, call one function of oci/, map its error to runc's exit
status (1), with the message on stderr and, with --log, in the log file. Imports are
lazy: `state` is called on every poll of podman and Slurm and must stay fast.
"""

from __future__ import annotations

import os
import sys

from rootless.errors import EXIT_CANNOT_INVOKE, EXIT_NOT_FOUND, RootlessError, UsageError

EXIT_FAILURE = 1  # runc's status for any failure of its own


def _bool_word(text: str) -> str:
    if text not in ("true", "false", "auto"):
        raise ValueError(f"invalid value {text!r}: true, false or auto")
    return text


def _count(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"invalid count {text!r}")
    return int(text)


VERBS = ("create", "start", "state", "kill", "delete", "run", "exec", "spec", "features",
         "ps")


class _Skipped:
    """A verb's parser that is not built: ArgumentParser() costs ~0.5 ms each, and one
    command needs only its own (half of `run`'s start-up went into the other nine)."""

    def add_argument(self, *args, **kwargs) -> None:
        pass


def verb_of(argv: list[str]) -> str | None:
    """The verb argv names after the global flags, if it is a known one."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] in ("-h", "--help"):
            return None
        if argv[i] in _GLOBAL_VALUES:
            i += 1
        i += 1
    return argv[i] if i < len(argv) and argv[i] in VERBS else None


def parser(only: str | None = None):
    """The argparse parser (imported here: `state` mostly never needs it); with `only`,
    of that verb alone."""
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str):  # one line, our exit status, no usage dump
            raise UsageError(f"{message} (see: {self.prog} --help)")

    p = _Parser(prog="rootless-oci", description="A runc-compatible OCI runtime for "
                "unprivileged users.")
    p.add_argument("--root", default=None, help="state directory (default "
                   "$XDG_RUNTIME_DIR/rootless-oci)")
    p.add_argument("--log", default=None, help="log file")
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    p.add_argument("--debug", action="store_true")
    p.add_argument("--rootless", type=_bool_word, default="auto")
    p.add_argument("--systemd-cgroup", action="store_true", help="accepted, ignored")
    p.add_argument("--cgroup-manager", default=None, help="accepted, ignored")
    p.add_argument("-v", "--version", action="store_true")
    verbs = p.add_subparsers(dest="verb", parser_class=_Parser)

    def verb(name: str, help_text: str, with_id: bool = True):
        if only is not None and name != only:
            return _Skipped()
        sub = verbs.add_parser(name, help=help_text)
        if with_id:
            sub.add_argument("id")
        return sub

    def creating(sub) -> None:
        sub.add_argument("-b", "--bundle", default=".")
        sub.add_argument("--console-socket", default=None)
        sub.add_argument("--pid-file", default=None)
        sub.add_argument("--no-pivot", action="store_true")
        sub.add_argument("--no-new-keyring", action="store_true")
        sub.add_argument("--preserve-fds", type=_count, default=0)

    creating(verb("create", "create a container, its init parked until start"))
    verb("start", "start a created container")
    verb("state", "print a container's state as JSON")
    kill = verb("kill", "send a signal to a container's init")
    kill.add_argument("signal", nargs="?", default="SIGTERM")
    kill.add_argument("-a", "--all", action="store_true")
    delete = verb("delete", "delete a container")
    delete.add_argument("-f", "--force", action="store_true")
    run = verb("run", "create and start a container, wait for it, delete it")
    creating(run)
    run.add_argument("-d", "--detach", action="store_true")
    run.add_argument("--keep", action="store_true")
    ex = verb("exec", "run a process in a running container")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    ex.add_argument("-p", "--process", default=None)
    ex.add_argument("-d", "--detach", action="store_true")
    ex.add_argument("-t", "--tty", action="store_true")
    ex.add_argument("--pid-file", default=None)
    ex.add_argument("--console-socket", default=None)
    ex.add_argument("--cwd", default=None)
    ex.add_argument("-e", "--env", action="append", default=[])
    ex.add_argument("-u", "--user", default=None)
    ex.add_argument("--preserve-fds", type=_count, default=0)
    spec = verb("spec", "write a starting config.json", with_id=False)
    spec.add_argument("-b", "--bundle", default=".")
    spec.add_argument("--rootless", action="store_true")
    verb("features", "print what this runtime supports, as JSON", with_id=False)
    ps = verb("ps", "list a container's processes")
    ps.add_argument("-f", "--format", default="table")
    ps.add_argument("ps_args", nargs="*")
    return p


def _signal(text: str) -> int:
    import signal

    name = text.upper()
    if name.isdigit():
        number = int(name)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = name if name.startswith("SIG") else "SIG" + name
        number = getattr(signal.Signals, name, None) if name.isidentifier() else None
        if isinstance(number, signal.Signals):
            return int(number)
    raise UsageError(f"unknown signal {text!r}")


def dispatch(args, root: str) -> int:
    verb = args.verb
    if verb == "state":
        import json

        from rootless.oci.state import Container

        with Container.open(root, args.id) as container:
            sys.stdout.write(json.dumps(container.public_state(), indent=2) + "\n")
        return 0
    if verb in ("create", "start", "kill", "delete"):
        from rootless.oci import lifecycle

        if verb == "create":
            lifecycle.container_create(
                root, args.id, args.bundle, console_socket=args.console_socket,
                pid_file=args.pid_file, preserve_fds=args.preserve_fds,
                debug=args.debug).close()
        elif verb == "start":
            lifecycle.container_start(root, args.id)
        elif verb == "kill":
            lifecycle.container_kill(root, args.id, _signal(args.signal), args.all)
        else:
            lifecycle.container_delete(root, args.id, args.force)
        return 0
    if verb == "run":
        from rootless.oci.run import container_run

        return container_run(root, args.id, args.bundle, detach=args.detach,
                             console_socket=args.console_socket, pid_file=args.pid_file,
                             keep=args.keep, preserve_fds=args.preserve_fds,
                             debug=args.debug)
    if verb == "exec":
        from rootless.oci.run import container_exec

        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        return container_exec(root, args.id, process_file=args.process, args=command,
                              detach=args.detach, tty=args.tty, pid_file=args.pid_file,
                              console_socket=args.console_socket, cwd=args.cwd,
                              env=args.env, user=args.user,
                              preserve_fds=args.preserve_fds, debug=args.debug)
    from rootless.oci import info

    if verb == "spec":
        info.spec_write(args.bundle, args.rootless)
    elif verb == "features":
        import json

        sys.stdout.write(json.dumps(info.features(), indent=2) + "\n")
    elif verb == "ps":
        sys.stdout.write(info.container_ps(root, args.id, args.format, args.ps_args))
    return 0


_GLOBAL_VALUES = {"--root", "--log", "--log-format", "--rootless", "--cgroup-manager"}
_GLOBAL_FLAGS = {"--debug", "--systemd-cgroup"}


# the verbs engines call on every container, parsed without argparse (its import and
# parsers are ~5-10 ms of a 20-40 ms command): each verb's flags, by kind
_PLAIN_VERBS = {
    "state": {}, "start": {},
    "delete": {"-f": "force", "--force": "force"},
    "kill": {"-a": "all", "--all": "all"},
    "create": {}, "run": {"-d": "detach", "--detach": "detach", "--keep": "keep"},
}
_CREATING = {"-b": "bundle", "--bundle": "bundle", "--console-socket": "console_socket",
             "--pid-file": "pid_file", "--preserve-fds": "preserve_fds"}
_CREATING_FLAGS = {"--no-pivot": "no_pivot", "--no-new-keyring": "no_new_keyring"}


def _plain(argv: list[str]):
    """`[GLOBAL FLAGS] VERB [FLAGS] ID [SIGNAL]` for state, start, delete, kill, create and
    run, in runc's grammar, as argparse would read it; None for anything else or unusual
    (help, a flag we do not know, a missing value), which then goes to the parser."""
    values = {"root": None, "log": None, "log_format": "text", "debug": False,
              "version": False}
    i = _plain_globals(argv, values)
    if i is None or i >= len(argv) or argv[i] not in _PLAIN_VERBS or \
            values["log_format"] not in ("text", "json"):
        return None
    verb = argv[i]
    flags = dict(_PLAIN_VERBS[verb])
    takes = dict(_CREATING) if verb in ("create", "run") else {}
    if verb in ("create", "run"):
        flags.update(_CREATING_FLAGS)
        values.update(bundle=".", console_socket=None, pid_file=None, preserve_fds=0,
                      no_pivot=False, no_new_keyring=False)
    values.update({name: False for name in flags.values()})
    words = []
    i += 1
    while i < len(argv):
        word = argv[i]
        name, eq, value = word.partition("=")
        if word == "--" or word in ("-h", "--help"):
            return None
        if word.startswith("-") and word != "-":
            if name in takes:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        return None
                    value = argv[i]
                values[takes[name]] = value
            elif word in flags:
                values[flags[word]] = True
            else:
                return None
        else:
            words.append(word)
        i += 1
    wanted = (1, 2) if verb == "kill" else (1,)
    if len(words) not in wanted or not str(values.get("preserve_fds", "0")).isdigit():
        return None
    if "preserve_fds" in values:
        values["preserve_fds"] = int(values["preserve_fds"])
    if verb == "kill":
        values["signal"] = words[1] if len(words) == 2 else "SIGTERM"
    from types import SimpleNamespace

    return SimpleNamespace(verb=verb, id=words[0], **values)


def _plain_globals(argv: list[str], values: dict) -> int | None:
    """Read the global flags into `values`; the index of the verb, None if unusual."""
    i = 0
    while i < len(argv) and argv[i].startswith("--"):
        name, eq, value = argv[i].partition("=")
        if name in _GLOBAL_FLAGS and not eq:
            values["debug"] |= name == "--debug"
        elif name in _GLOBAL_VALUES:
            if not eq:
                i += 1
                if i >= len(argv):
                    return None
                value = argv[i]
            if name == "--rootless" and value not in ("true", "false", "auto"):
                return None  # the parser says why
            key = name[2:].replace("-", "_")
            if key in values:
                values[key] = value
        else:
            return None
        i += 1
    return i


def _hold_preserved(count: int) -> None:
    """Fill every gap in 3 .. 3+count-1 with /dev/null before we open anything: the
    container gets those numbers whatever they hold, and a gap the caller left would
    otherwise be taken by one of our own descriptors (the state directory, a pipe) and
    hand the container a way out (runc CVE-2024-21626 came through such a leak)."""
    import fcntl

    for fd in range(3, 3 + count):
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            null = os.open("/dev/null", os.O_RDWR)  # the lowest free number: this gap
            if null != fd:
                os.dup2(null, fd, inheritable=False)
                os.close(null)


def main(argv: list[str] | None = None) -> int:
    from rootless.oci.log import log, log_setup

    argv = sys.argv[1:] if argv is None else argv
    args = None
    try:
        args = _plain(argv) or parser(verb_of(argv)).parse_args(argv)
        log_setup(args.log, args.log_format, args.debug)
        if args.version:
            from rootless.oci.info import version_text

            sys.stdout.write(version_text())
            return 0
        if not args.verb:
            raise UsageError("a command is needed (see: rootless-oci --help)")
        if args.debug:
            log("debug", f"rootless-oci {' '.join(argv)}")
        _hold_preserved(getattr(args, "preserve_fds", 0))
        from rootless.oci.state import default_root

        root = os.path.abspath(args.root) if args.root else default_root()
        return dispatch(args, root)
    except RootlessError as e:
        log("error", str(e))
        if getattr(args, "verb", None) == "run" and \
                e.exit_code in (EXIT_CANNOT_INVOKE, EXIT_NOT_FOUND):
            return e.exit_code  # the command could not run: 126/127, as a shell says
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug of ours: still one line, never a traceback
        log("error", f"internal error: {type(e).__name__}: {e}")
        return EXIT_FAILURE


def entry() -> None:
    sys.exit(main())
