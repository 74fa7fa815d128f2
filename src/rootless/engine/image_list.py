"""`docker image ls` and its filters (dangling, reference, before, since, label, until),
shared with `image prune`.

Rows are built as the docker CLI builds them from the daemon's answer: one row per
repository tag, a tag's row repeated per digest of its repository when digests are
shown, a row with tag `<none>` for a repository known only by digest, and one
`<none>` row for an image with no name at all. Newest image first.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable

from rootless.errors import ImageError, UsageError
from rootless.records import record
from rootless.store import metadata as md

NONE = "<none>"
LIST_FILTERS = ("dangling", "reference", "before", "since", "label", "until")


@record
class ImageListRow:
    repository: str  # "<none>" for an untagged image
    tag: str
    id: str  # sha256:<hex>
    created: float | None
    size: int
    digest: str = NONE  # sha256:<hex> of the manifest for that repository
    containers: int = 0


# ---- filters ----

def parse_filters(filters: Iterable[str], accepted: tuple[str, ...]) -> dict[str, list[str]]:
    """["key=value", ...] -> {key: [values]}. A flag value without "=" is a usage error
    (the docker CLI's own check); an unknown key is the daemon's "invalid filter"."""
    result: dict[str, list[str]] = {}
    for text in filters:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise UsageError(f"bad format of filter (expected name=value): {text}")
        key = key.strip().lower()
        if key not in accepted:
            raise ImageError(f"invalid filter '{key}'")
        result.setdefault(key, []).append(value)
    return result


def filter_bool(spec: dict[str, list[str]], key: str) -> bool | None:
    """A boolean filter's value; None when absent."""
    values = spec.get(key)
    if not values:
        return None
    truths = {v.strip().lower() for v in values}
    if not truths <= {"true", "1", "false", "0"}:
        raise ImageError(f"invalid filter '{key}={values[0]}'")
    if len({v in ("true", "1") for v in truths}) > 1:
        raise ImageError(f"invalid filter '{key}': give it one value, not {values}")
    return truths.pop() in ("true", "1")


def labels_match(labels: dict[str, str], wanted: list[str], negate: bool = False) -> bool:
    """`label=KEY` (present) or `label=KEY=VALUE` (equal), all of them; with `negate`
    (docker's `label!=`) none of them."""
    def one(item: str) -> bool:
        key, sep, value = item.partition("=")
        return key in labels and (not sep or labels[key] == value)

    if negate:
        return not any(one(item) for item in wanted)
    return all(one(item) for item in wanted)


def until_cutoff(values: list[str], now: float | None = None) -> float:
    """`until=` as seconds since the epoch: a Go duration before now (10m, 1h30m) or a
    timestamp (unix seconds, RFC 3339 date or time)."""
    now = time.time() if now is None else now
    if len(values) > 1:
        raise ImageError("invalid filter 'until': give it one value")
    text = values[0].strip()
    seconds = go_duration(text)
    if seconds is not None:
        return now - seconds
    try:
        return float(text)
    except ValueError:
        pass
    from datetime import datetime

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ImageError(f"invalid filter 'until={text}': not a duration (10m, 1h30m) or "
                         "a timestamp (unix seconds, 2006-01-02T15:04:05Z)") from None
    return when.timestamp()  # without a zone, local time, as docker's GetTimestamp


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60,
                   "h": 3600}
_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")


def go_duration(text: str) -> float | None:
    """Go's time.ParseDuration, in seconds; None if `text` is not one."""
    if not text or not re.fullmatch(rf"(?:{_DURATION.pattern})+", text):
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION.findall(text))


def go_path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: `*` and `?` stop at '/', `[...]` classes with `^`, `\\` escapes."""
    return re.fullmatch(_glob_regex(pattern), name) is not None


def _glob_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i + 1 >= len(pattern):
                raise _bad_pattern(pattern)
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            regex, i = _glob_class(pattern, i + 1)
            out.append(regex)
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _glob_class(pattern: str, i: int) -> tuple[str, int]:
    """A `[...]` class starting after its '['; (regex, index after the ']')."""
    negate = pattern.startswith("^", i)
    i += negate
    items = []
    while True:
        if i >= len(pattern):
            raise _bad_pattern(pattern)
        if pattern[i] == "]" and items:  # a class is never empty: "[]" is an error
            return f"[{'^' if negate else ''}{''.join(items)}]", i + 1
        low, i = _class_char(pattern, i)
        if pattern.startswith("-", i):
            high, i = _class_char(pattern, i + 1)
            if high < low:
                raise _bad_pattern(pattern)
            items.append(f"{re.escape(low)}-{re.escape(high)}")
        else:
            items.append(re.escape(low))


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        raise _bad_pattern(pattern)
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise _bad_pattern(pattern)
    return pattern[i], i + 1


def _bad_pattern(pattern: str) -> ImageError:
    return ImageError(f"invalid filter 'reference={pattern}': syntax error in pattern")


# ---- the list ----

def image_list(store, reference: str | None = None, filters: Iterable[str] = (),
               digests: bool = False, all_images: bool = False) -> list[ImageListRow]:
    """The rows of `docker images [-a] [--digests] [-f ...] [REPOSITORY[:TAG]]`.
    `reference` keeps the rows of that repository (and tag). Without -a, an untagged
    image a build step made is left out, as docker leaves out intermediate images."""
    from rootless.image.reference import parse_reference

    spec = parse_filters(filters, LIST_FILTERS)
    want = parse_reference(reference, default_tag=False) if reference else None
    keep_image = image_predicate(store, spec)
    patterns = spec.get("reference", [])
    dangling = filter_bool(spec, "dangling")
    tags, repo_digests = md.tags_all(store), md.digests_all(store)
    counts = md.container_counts(store)
    intermediate = set() if all_images else md.build_cache_images(store)
    rows: list[ImageListRow] = []
    for image in md.images_listed(store):
        if image.id in intermediate and image.id not in tags and image.id not in repo_digests:
            continue
        config = config_of(image)
        if not keep_image(image, config):
            continue
        names = [parse_reference(n) for n in tags.get(image.id, [])]
        dnames = [parse_reference(n) for n in repo_digests.get(image.id, [])]
        if want:
            names = [n for n in names if n.name == want.name and want.tag in (None, n.tag)]
            dnames = [n for n in dnames if n.name == want.name and not want.tag]
            if not names and not dnames:
                continue
        if patterns:
            names = [n for n in names if _reference_match(patterns, n)]
            dnames = [n for n in dnames if _reference_match(patterns, n)]
            if not names and not dnames:
                continue
        if dangling is True and names or dangling is False and not names and not dnames:
            continue
        base = ImageListRow(NONE, NONE, image.id, image.created or image.added, image.size,
                            NONE, counts.get(image.id, 0))
        rows += _rows(base, names, dnames, digests)
    return rows


def _rows(base: ImageListRow, names: list, dnames: list, digests: bool) -> list[ImageListRow]:
    """The docker CLI's imageFormatTaggedAndDigest."""
    by_repo: dict[str, list[str]] = {}
    for ref in dnames:
        by_repo.setdefault(ref.familiar_name, []).append(ref.digest)
    rows = []
    for ref in names:
        repo_digests = by_repo.get(ref.familiar_name, []) if digests else []
        for digest in repo_digests or [NONE]:
            rows.append(base._replace(repository=ref.familiar_name, tag=ref.tag,
                                      digest=digest))
    tagged = {ref.familiar_name for ref in names}
    for repo, repo_digests in by_repo.items():
        if repo in tagged:
            continue
        for digest in repo_digests if digests else [""]:
            rows.append(base._replace(repository=repo, digest=digest or NONE))
    return rows or [base]


def _reference_match(patterns: list[str], ref) -> bool:
    """docker's reference.FamiliarMatch: the familiar string, then the familiar name."""
    return any(go_path_match(p, ref.familiar()) or go_path_match(p, ref.familiar_name)
               for p in patterns)


def image_predicate(store, spec: dict[str, list[str]]):
    """(image row, config) -> bool for the filters on the image itself: before, since,
    label, label!, until."""
    def created_of(name: str) -> float:
        from rootless.engine.images import image_lookup  # only for before= and since=

        row = md.image_get(store, image_lookup(store, name))
        return row.created or row.added

    before = min((created_of(n) for n in spec.get("before", [])), default=None)
    since = max((created_of(n) for n in spec.get("since", [])), default=None)
    until = until_cutoff(spec["until"]) if spec.get("until") else None
    labels, not_labels = spec.get("label", []), spec.get("label!", [])

    def keep(image: md.ImageRow, config: dict[str, object]) -> bool:
        created = image.created or image.added
        if before is not None and not created < before:
            return False
        if since is not None and not created > since:
            return False
        if until is not None and not created < until:
            return False
        found = _labels(config)
        return labels_match(found, labels) and labels_match(found, not_labels, negate=True)

    return keep


def config_of(image: md.ImageRow) -> dict[str, object]:
    try:
        config = json.loads(image.config)
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def _labels(config: dict[str, object]) -> dict[str, str]:
    labels = (config.get("config") or {}).get("Labels") or {}
    return labels if isinstance(labels, dict) else {}
