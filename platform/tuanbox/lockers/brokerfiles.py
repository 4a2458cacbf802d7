"""Writing the broker's files so that the broker, running as its own user, can read them.

A stock Mosquitto started as root drops to the ``mosquitto`` user before it reads its password,
ACL and plugin files; the eclipse-mosquitto image runs as uid/gid 1883. So the files are
written owned by whoever runs `tuanbox lockers broker-config`, group the broker's group, mode
0640 (secrets: never world-readable), and the conf snippet 0644. Files are rewritten in place,
keeping their inode, because compose bind-mounts them one by one and a renamed-over file
would stay invisible to the container.
"""

from __future__ import annotations

import glob
import grp
import os
from dataclasses import dataclass
from pathlib import Path

from tuanbox.lockers import credentials
from tuanbox.lockers.errors import BrokerFilesError

SECRET_MODE = 0o640
PUBLIC_MODE = 0o644
DIR_MODE = 0o750
# The group of the eclipse-mosquitto image's `mosquitto` user (uid and gid 1883).
CONTAINER_GID = 1883
# Debian/Ubuntu put it under the multiarch directory, the container image under /usr/lib.
PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)
CONTAINER_PLUGIN = "/usr/lib/mosquitto_dynamic_security.so"
PASSWD, ACL, DYNSEC, CONF = "passwd", "acl", "dynamic-security.json", "tuanbox.conf"

APPLY = (
    "Lockers' broker logins are read when Mosquitto starts: restart it to apply "
    "(packaged: `systemctl restart mosquitto`; compose: `docker compose restart mosquitto`). "
    "Until then the old password still works and the new one is refused; persistent sessions "
    "and queued messages survive the restart, and lockers reconnect by themselves. "
    "A bridge account change alone needs only a reload (SIGHUP: `systemctl reload mosquitto`)."
)


def broker_gid(group: str | None) -> int:
    """The broker's group: a name or number; by default the host's `mosquitto` group (the
    packaged broker), else 1883 (the container image's)."""
    if group is None:
        try:
            return grp.getgrnam("mosquitto").gr_gid
        except KeyError:
            return CONTAINER_GID
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise BrokerFilesError(f"no group {group!r} on this host; pass its number") from exc


def plugin_path(explicit: str | None) -> str:
    """Where the broker finds the dynamic-security plugin (as the broker sees the path)."""
    if explicit:
        return explicit
    for pattern in PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return CONTAINER_PLUGIN


@dataclass(frozen=True)
class Written:
    directory: Path
    accounts: int
    lockers: int
    gid: int


def _write(path: Path, text: str, *, mode: int, gid: int) -> None:
    """Create or overwrite in place with the final owner and mode set before any content."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, mode)
    try:
        try:
            os.fchown(fd, -1, gid)
        except PermissionError as exc:
            raise BrokerFilesError(
                f"cannot give {path} to group {gid}: run as root, or pass --broker-group "
                "with a group you belong to that the broker's user is in"
            ) from exc
        os.fchmod(fd, mode)
        os.ftruncate(fd, 0)
        data = text.encode()
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def write_broker_files(
    out: Path,
    *,
    bridges: list[credentials.BrokerAccount],
    lockers: list[credentials.BrokerAccount],
    gid: int,
    port: int,
    plugin: str,
    paths_as_seen_by_broker: Path | None = None,
) -> Written:
    """passwd (bridges), acl, dynamic-security.json (lockers) and a conf snippet in `out`.

    `paths_as_seen_by_broker`: the directory as the broker sees it (a container's mount
    point); by default `out` itself, resolved."""
    if not out.exists():
        out.mkdir(parents=True, mode=DIR_MODE)
        try:
            os.chown(out, -1, gid)
        except PermissionError as exc:
            raise BrokerFilesError(f"cannot give {out} to group {gid}") from exc
    seen = paths_as_seen_by_broker or out.resolve()
    _write(out / PASSWD, credentials.render_password_file(bridges), mode=SECRET_MODE, gid=gid)
    acl = credentials.render_acl_file([b.username for b in bridges])
    _write(out / ACL, acl, mode=SECRET_MODE, gid=gid)
    dynsec = credentials.render_dynamic_security(lockers)
    _write(out / DYNSEC, dynsec, mode=SECRET_MODE, gid=gid)
    conf = credentials.render_mosquitto_conf(
        port=port,
        password_file=str(seen / PASSWD),
        acl_file=str(seen / ACL),
        plugin=plugin,
        dynamic_security_file=str(seen / DYNSEC),
    )
    _write(out / CONF, conf, mode=PUBLIC_MODE, gid=gid)
    return Written(out, len(bridges) + len(lockers), len(lockers), gid)
