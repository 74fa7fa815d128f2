"""Docker's seccomp profile format -> the OCI spec's `linux.seccomp`, for one container.

Every container gets docker's default profile (profiles/seccomp-default.json, moby's own,
Apache-2.0; see profiles/README.md) unless `--security-opt seccomp=unconfined` or
`--privileged` lifts it, or `--security-opt seccomp=PROFILE.json` replaces it with a
profile in the same format. That format is the OCI section plus conditions, resolved here
as moby's profiles/seccomp does (setupSeccomp):

- `archMap`: the entry for this machine's architecture gives `architectures` (itself and
  its sub-architectures, e.g. x86_64 with x86 and x32);
- `includes` / `excludes` of a rule: `caps` (all of them must / any of them must not be
  in the container's bounding set), `arches` (docker's Go names: amd64, arm64, ...) and
  `minKernel` ("4.8": the running kernel is at least that);
- `name` is the old spelling of a one-element `names`.

A profile file is user input: it is read bounded and regular-file only, and checked whole
(every rule, whatever the container's capabilities) before any container exists, so a bad
one is a one-line error, exit 125, with nothing left behind. The runtime compiles the
result (runtime/seccomp.py).
"""

from __future__ import annotations

import os

from rootless import jsonfast
from rootless.errors import RootlessError, UsageError

BUILTIN = "builtin"  # docker's word for its default profile
UNCONFINED = "unconfined"
DEFAULT_PROFILE = os.path.join(os.path.dirname(__file__), "profiles", "seccomp-default.json")
DEFAULT_ORIGIN = "docker's default: moby/profiles seccomp/default.json at cd3bed8 (2026-06-30)"
MAX_PROFILE_BYTES = 4 << 20

# os.uname().machine -> the Go architecture names docker's profiles use in `arches`
GO_ARCH = {"x86_64": "amd64", "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86",
           "aarch64": "arm64", "armv6l": "arm", "armv7l": "arm", "armv8l": "arm",
           "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x", "s390": "s390",
           "riscv64": "riscv64", "loongarch64": "loong64", "mips64": "mips64"}
# and the seccomp architecture each names in an archMap
SCMP_ARCH = {"amd64": "SCMP_ARCH_X86_64", "x86": "SCMP_ARCH_X86", "arm64": "SCMP_ARCH_AARCH64",
             "arm": "SCMP_ARCH_ARM", "ppc64le": "SCMP_ARCH_PPC64LE", "ppc64": "SCMP_ARCH_PPC64",
             "s390x": "SCMP_ARCH_S390X", "s390": "SCMP_ARCH_S390",
             "riscv64": "SCMP_ARCH_RISCV64", "loong64": "SCMP_ARCH_LOONGARCH64",
             "mips64": "SCMP_ARCH_MIPS64"}
# what an OCI section carries over unchanged from a docker profile
_PASSED_ON = ("defaultAction", "defaultErrnoRet", "flags", "listenerPath",
              "listenerMetadata")
_RULE_FIELDS = ("action", "errnoRet", "args")


class ProfileError(UsageError):
    """A --security-opt seccomp= profile that cannot be used."""


def profile_load(value: str) -> dict:
    """The profile `--security-opt seccomp=VALUE` names, checked: {} for unconfined."""
    if value == UNCONFINED:
        return {}
    path = DEFAULT_PROFILE if value in ("", BUILTIN) else value
    profile = _parse(path, _read(path))
    if path != DEFAULT_PROFILE:  # ours is checked by the unit tests, not on every run
        profile_check(profile, path)
    return profile


def _read(path: str) -> bytes:
    import errno

    from rootless.kernel.paths import read_regular_path

    try:
        return read_regular_path(path, MAX_PROFILE_BYTES)
    except OSError as e:
        if e.errno == errno.EFBIG:
            raise ProfileError(f"seccomp profile {path} is larger than "
                               f"{MAX_PROFILE_BYTES >> 20} MiB") from e
        raise ProfileError(f"opening seccomp profile ({path}) failed: "
                           f"{e.strerror.lower()}") from e


def _parse(path: str, data: bytes) -> dict:
    try:
        profile = jsonfast.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        reason = str(e)[:1].lower() + str(e)[1:]  # json's messages are capitalised
        raise ProfileError(f"decoding seccomp profile {path} failed: {reason}") from e
    if not isinstance(profile, dict):
        raise ProfileError(f"decoding seccomp profile {path} failed: not a JSON object")
    return profile


def profile_check(profile: dict, path: str) -> None:
    """Every field of the profile, so that converting it later cannot fail."""
    from rootless.runtime.seccomp import check_section

    try:
        section = _convert(profile, None)
        if section is not None:
            check_section(section)
    except RootlessError as e:
        message = str(e).removeprefix("seccomp: ")
        raise ProfileError(f"invalid seccomp profile {path}: {message}") from e


def profile_to_oci(profile: dict, capabilities: list[str] | tuple[str, ...],
                   machine: str | None = None, release: str | None = None) -> dict | None:
    """The OCI `linux.seccomp` for a container with these bounding capabilities on this
    machine and kernel (os.uname() unless given); None for no filter at all."""
    uname = os.uname()
    host = Host(GO_ARCH.get(machine or uname.machine, machine or uname.machine),
                set(capabilities), _kernel_version(release or uname.release))
    return _convert(profile, host)


class Host:
    """What a profile's conditions are about: docker's Go name of this machine's
    architecture, the container's bounding capabilities, the kernel's version. (A plain
    class: a NamedTuple compiles its annotations at import, ~0.5 ms of every `run`.)"""

    def __init__(self, arch: str, caps: set[str], kernel: tuple[int, int]) -> None:
        self.arch, self.caps, self.kernel = arch, caps, kernel

    def selects(self, rule: dict) -> bool:
        """moby's includes/excludes: every include holds and no exclude does."""
        includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
        if excludes.get("arches") and self.arch in excludes["arches"]:
            return False
        if any(cap in self.caps for cap in excludes.get("caps") or []):
            return False
        if excludes.get("minKernel") and self.kernel >= _version(excludes["minKernel"]):
            return False
        if includes.get("arches") and self.arch not in includes["arches"]:
            return False
        if not all(cap in self.caps for cap in includes.get("caps") or []):
            return False
        return not (includes.get("minKernel") and self.kernel < _version(includes["minKernel"]))

    def architectures(self, profile: dict) -> list[str]:
        arches = list(profile.get("architectures") or [])
        for entry in profile.get("archMap") or []:
            if entry["architecture"] == SCMP_ARCH.get(self.arch):
                arches += [entry["architecture"], *(entry.get("subArchitectures") or [])]
                break
        return arches


def _convert(profile: dict, host: Host | None) -> dict | None:
    """The OCI section for `host`; with None, every rule and architecture, checked."""
    if profile.get("defaultAction") in (None, "") and not profile.get("syscalls"):
        return None  # moby: no default action and no rules is no filter
    _top_check(profile)
    section = {key: profile[key] for key in _PASSED_ON if key in profile}
    rules = [_rule_check(rule) for rule in profile.get("syscalls") or []]
    if host is None:
        section["architectures"] = _all_architectures(profile)
        section["syscalls"] = [_oci_rule(rule) for rule in rules]
    else:
        section["architectures"] = host.architectures(profile)
        section["syscalls"] = [_oci_rule(rule) for rule in rules if host.selects(rule)]
    return section


def _top_check(profile: dict) -> None:
    if profile.get("architectures") and profile.get("archMap"):
        raise ProfileError("both 'architectures' and 'archMap' are given; use one")
    for key in ("syscalls", "archMap", "architectures"):
        if not isinstance(profile.get(key, []), (list, type(None))):
            raise ProfileError(f"{key} must be a list")


def _all_architectures(profile: dict) -> list[str]:
    arches = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("architecture"), str):
            raise ProfileError("every archMap entry needs an architecture")
        subs = entry.get("subArchitectures") or []
        if not isinstance(subs, list):
            raise ProfileError("subArchitectures must be a list")
        arches += [entry["architecture"], *subs]
    return arches


def _rule_check(rule: object) -> dict:
    if not isinstance(rule, dict):
        raise ProfileError("every entry of syscalls must be an object")
    if rule.get("name") and rule.get("names"):
        raise ProfileError("both 'name' and 'names' are given in one rule; use one")
    _conditions_check(rule)
    return rule


def _oci_rule(rule: dict) -> dict:
    names = [rule["name"]] if rule.get("name") else rule.get("names")
    oci = {"names": names}
    oci.update((key, rule[key]) for key in _RULE_FIELDS if key in rule)
    return oci


def _conditions_check(rule: dict) -> None:
    for key in ("includes", "excludes"):
        condition = rule.get(key) or {}
        if not isinstance(condition, dict):
            raise ProfileError(f"{key} must be an object")
        for field in ("caps", "arches"):
            values = condition.get(field) or []
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ProfileError(f"{key}.{field} must be a list of names")
        if condition.get("minKernel"):
            _version(condition["minKernel"])


def _version(text: object) -> tuple[int, int]:
    """moby's minKernel: "<kernel>.<major>", e.g. "4.8"."""
    kernel, dot, major = text.partition(".") if isinstance(text, str) else ("", "", "")
    if not (dot and _digits(kernel, 3) and _digits(major, 3)) or (kernel, major) == ("0", "0"):
        raise ProfileError(f'invalid kernel version {text!r}, expected "<kernel>.<major>"')
    return int(kernel), int(major)


def _kernel_version(release: str) -> tuple[int, int]:
    """3.12.25-gentoo and 3.12-1-amd64 are both (3, 12), as moby reads them."""
    kernel, _, rest = release.partition(".")
    major = rest[:len(rest) - len(rest.lstrip("0123456789"))]
    return (int(kernel), int(major)) if _digits(kernel) and major else (0, 0)


def _digits(text: str, most: int | None = None) -> bool:
    """1 to `most` ASCII digits (str.isdigit also takes other scripts' digits; `re` is
    not imported on every `run` for this)."""
    return 0 < len(text) <= (most or len(text)) and all(c in "0123456789" for c in text)
