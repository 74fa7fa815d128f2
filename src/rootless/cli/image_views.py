"""How `image ls`, `image history` and `system df` rows look: Docker's field names for
--format, its column titles and default table templates, its size and time words; and
`image ls` itself (images_print), which cli/hot.py reaches without typer.

Every value is a string, as the docker CLI's formatter methods return them.
"""

from __future__ import annotations

import time

# ---- words ----


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: decimal units; `images` and `history` use 3
    significant digits, HumanSize (prune, df) uses 4. As in Go, 999.7 is "1e+03B"."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def since(now: float, when: float | None) -> str:
    if not when:
        return "N/A"
    from rootless.engine.containers import human_duration

    return f"{human_duration(now - when)} ago"


def rfc3339(when: float | None) -> str:
    """Go's time.Unix(t, 0).Format(time.RFC3339), in local time."""
    if not when:
        return "N/A"
    local = time.localtime(int(when))
    offset = local.tm_gmtoff
    zone = "Z" if offset == 0 else \
        f"{'+' if offset > 0 else '-'}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + zone


def go_time(when: float | None) -> str:
    """Go's Time.String(), as `docker images --format {{.CreatedAt}}` prints it."""
    if not when:
        return "N/A"
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(when))


def ellipsis(text: str, width: int) -> str:
    """The docker CLI's formatter.Ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def parse_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool; None if `text` is not a boolean."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    return None


def print_rows(format: str, rows: list[dict[str, object]], headers: dict[str, str]) -> None:
    from rootless.cli.template import render_rows

    for line in render_rows(format, rows, headers):
        print(line)


# ---- image ls ----

IMAGE_HEADERS = {
    "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
    "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
    "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE",
    "Containers": "CONTAINERS",
}
IMAGE_COLUMNS = ("Repository", "Tag", "ID", "CreatedSince", "Size")
IMAGE_COLUMNS_DIGESTS = ("Repository", "Tag", "Digest", "ID", "CreatedSince", "Size")
IMAGE_TABLE = "table " + "\t".join("{{." + key + "}}" for key in IMAGE_COLUMNS)
IMAGE_TABLE_DIGESTS = "table " + "\t".join("{{." + key + "}}" for key in IMAGE_COLUMNS_DIGESTS)


def image_entry(row, now: float, no_trunc: bool, shared: int | None = None) -> dict[str, str]:
    """One `images` row as docker's --format sees it. `shared` (system df -v only) is
    the image's shared size; `docker images` does not compute it and says N/A."""
    return {
        "ID": row.id if no_trunc else row.id[7:19],
        "Repository": row.repository, "Tag": row.tag, "Digest": row.digest,
        "CreatedSince": since(now, row.created), "CreatedAt": go_time(row.created),
        "Size": human_size(row.size), "VirtualSize": human_size(row.size),
        "SharedSize": "N/A" if shared is None else human_size(shared, 4),
        "UniqueSize": "N/A" if shared is None else human_size(row.size - shared, 4),
        "Containers": str(row.containers),
    }


def images_print(store, reference: str | None = None, quiet: bool = False,
                 no_trunc: bool = False, digests: bool = False,
                 filter: list[str] | tuple[str, ...] = (), format: str = "",
                 all_images: bool = False) -> None:
    """`images` and `image ls|list` (cli/image.py with typer, cli/hot.py without)."""
    from rootless.engine.image_list import image_list

    rows = image_list(store, reference, filter, digests, all_images)
    if quiet and not format:
        for image_id in dict.fromkeys(r.id if no_trunc else r.id[7:19] for r in rows):
            print(image_id)
        return
    now = time.time()
    entries = [image_entry(r, now, no_trunc) for r in rows]
    if not format:
        columns = IMAGE_COLUMNS_DIGESTS if digests else IMAGE_COLUMNS
        for line in plain_table(columns, entries, IMAGE_HEADERS):
            print(line)
        return
    if digests and format.startswith("table") and "{{.Digest}}" not in format:
        format += "\t{{.Digest}}"  # docker adds the column to a table without it
    print_rows(format, entries, IMAGE_HEADERS)


def plain_table(columns: tuple[str, ...], rows: list[dict[str, str]],
                headers: dict[str, str]) -> list[str]:
    """The lines render_rows gives for `table {{.A}}\t{{.B}}...` over string fields,
    without the template engine, which costs ~3 ms to import and compile, as much as
    `images` spends on its work (tests/unit/test_hot_commands.py holds both equal)."""
    from rootless.cli.printable import escape_controls
    from rootless.cli.template_funcs import tabwrite

    lines = ["\t".join(headers[key] for key in columns)]
    lines += ["\t".join(escape_controls(row[key], "\n\t") for key in columns)
              for row in rows]
    return tabwrite("\n".join(lines).split("\n"))


# ---- image history ----

HISTORY_HEADERS = {
    "ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT",
}
HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_TABLE_NON_HUMAN = ("table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t"
                           "{{.Comment}}")


def history_entry(row, now: float, human: bool, no_trunc: bool) -> dict[str, str]:
    created_by = row.created_by.replace("\t", " ")
    return {
        "ID": row.id if no_trunc or not row.id.startswith("sha256:") else row.id[7:19],
        "CreatedSince": since(now, row.created) if human else rfc3339(row.created),
        "CreatedAt": rfc3339(row.created),
        "CreatedBy": created_by if no_trunc else ellipsis(created_by, 45),
        "Size": human_size(row.size) if human else str(row.size),
        "Comment": row.comment,
    }


# ---- image prune ----

PRUNE_WARNING = "WARNING! This will remove all dangling images."
PRUNE_ALL_WARNING = ("WARNING! This will remove all images without at least one container "
                     "associated to them.")


def confirm(warning: str) -> bool:
    """The docker CLI's PromptForConfirmation: only "y" or "Y" is yes; no answer (stdin
    closed or empty, as in a script without -f) is no."""
    import sys

    print(f"{warning}\nAre you sure you want to continue? [y/N] ", end="", flush=True)
    answer = sys.stdin.readline()
    if not answer.endswith("\n"):
        print()  # the user's Enter did not end the line: end it for them
    return answer.strip() in ("y", "Y")


# ---- system df ----

DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}
DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_IMAGE_TABLE = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t"
                  "{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}")
DF_CONTAINER_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
                        "LocalVolumes": "LOCAL VOLUMES", "Size": "SIZE",
                        "RunningFor": "CREATED", "Status": "STATUS", "Names": "NAMES"}
DF_VOLUMES = "VOLUME NAME\tLINKS\tSIZE"
DF_BUILD_CACHE = "CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED"


def df_summary(usage) -> list[dict[str, str]]:
    """The four rows of `docker system df`, as its formatter computes them: an active
    image is one a container uses, and the layers active images do not share with
    others are what cannot be reclaimed."""
    images, containers = usage.images, usage.containers
    used = sum(i.size - i.shared_size for i in images if i.containers)
    written = sum(c.size for c in containers)
    idle = sum(c.size for c in containers if not c.row.running)
    return [
        _df_row("Images", len(images), sum(1 for i in images if i.containers),
                usage.layers_size, usage.layers_size - used),
        _df_row("Containers", len(containers), sum(1 for c in containers if c.row.running),
                written, idle),
        _df_row("Local Volumes", 0, 0, 0, 0),
        _df_row("Build Cache", 0, 0, 0, 0),
    ]


def _df_row(kind: str, total: int, active: int, size: int, reclaimable: int) -> dict:
    text = human_size(reclaimable, 4)
    if size > 0:
        text += f" ({reclaimable * 100 // size}%)"
    return {"Type": kind, "TotalCount": str(total), "Active": str(active),
            "Size": human_size(size, 4), "Reclaimable": text}


def df_verbose(usage, now: float) -> list[str]:
    """docker's `system df -v` sections."""
    from rootless.cli.template import render_rows
    from rootless.cli.template_funcs import tabwrite
    from rootless.engine.image_list import ImageListRow

    images = [image_entry(ImageListRow(i.repository, i.tag, i.id, i.created, i.size,
                                       containers=i.containers), now, False, i.shared_size)
              for i in usage.images]
    containers = [_df_container(c, now) for c in usage.containers]
    return ["Images space usage:", "",
            *render_rows(DF_IMAGE_TABLE, images, IMAGE_HEADERS), "",
            "Containers space usage:", "",
            *render_rows("table " + "\t".join("{{." + k + "}}" for k in DF_CONTAINER_HEADERS),
                         containers, DF_CONTAINER_HEADERS), "",
            "Local Volumes space usage:", "", *tabwrite([DF_VOLUMES]), "",
            "Build cache usage: 0B", "", *tabwrite([DF_BUILD_CACHE])]


def _df_container(usage, now: float) -> dict[str, str]:
    record = usage.row.record
    return {"ID": record.short_id, "Image": record.image_name,
            "Command": f'"{ellipsis(record.command, 20)}"', "LocalVolumes": "0",
            "Size": human_size(usage.size), "RunningFor": since(now, record.created),
            "Status": usage.row.status(now), "Names": record.name}
