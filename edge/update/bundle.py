"""Release bundles: the project's wheel plus every dependency wheel, in one tar file.

A box installs with no network, so the bundle must be complete: the admin side
refuses a bundle whose wheels leave an unconditional requirement unmet. The box
side unpacks wheels itself (a wheel is a zip laid out for exactly this, PEP 427)
into ``<release>/site`` and writes a launcher per console script: no pip, no
venv creation, nothing fetched, and the old release stays untouched beside it.

One bundle may carry wheels for several machines (the Pi's aarch64 and a test
bench's x86_64): the box installs, per project, the wheel whose tags its own
interpreter ranks best (``packaging.tags``), and refuses the release when a
project has no wheel it can run. A complete bundle's launchers start Python with
``-I -S``: the release sees the standard library and its own wheels, nothing the
system's site-packages happen to hold, so what passed its health check on one box
runs the same on the next.
"""

from __future__ import annotations

import configparser
import hashlib
import io
import json
import os
import re
import tarfile
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path, PurePosixPath

from packaging.tags import Tag, sys_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from edge.update import UpdateError, version_key

PROJECT = "commune-edge"
MANIFEST = "manifest.json"
RELEASE_FILE = "release.json"
FORMAT = 1

_WHEEL_NAME = re.compile(
    r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$"
)
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)")


def normalize(name: str) -> str:
    """PEP 503 name: 'Sqlite_Utils' and 'sqlite-utils' are the same project."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Wheel:
    path: Path
    name: str
    version: str

    @classmethod
    def parse(cls, path: Path) -> Wheel:
        match = _WHEEL_NAME.match(path.name)
        if not match:
            raise UpdateError(f"{path.name} is not a wheel file name")
        return cls(path, normalize(match["name"]), match["version"])

    @property
    def tags(self) -> frozenset[Tag]:
        return wheel_tags(self.path.name)

    def metadata(self) -> tuple[list[str], dict[str, str]]:
        """Unconditional requirement names and console scripts, read from the dist-info."""
        with zipfile.ZipFile(self.path) as archive:
            names = archive.namelist()
            meta_name = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
            if meta_name is None:
                raise UpdateError(f"{self.path.name} has no METADATA: not a valid wheel")
            meta = Parser().parsestr(archive.read(meta_name).decode("utf-8"))
            entry_name = meta_name.replace("/METADATA", "/entry_points.txt")
            scripts: dict[str, str] = {}
            if entry_name in names:
                parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
                parser.optionxform = str  # type: ignore[assignment,method-assign]
                parser.read_string(archive.read(entry_name).decode("utf-8"))
                if parser.has_section("console_scripts"):
                    scripts = {k: v.strip() for k, v in parser.items("console_scripts")}
        required = []
        for line in meta.get_all("Requires-Dist") or []:
            if ";" in line:
                # conditional (platform, Python version, extra): cannot be judged here
                continue
            match = _REQUIREMENT_NAME.match(line)
            if match:
                required.append(normalize(match[1]))
        return required, scripts


def wheel_tags(filename: str) -> frozenset[Tag]:
    try:
        return parse_wheel_filename(filename)[3]
    except InvalidWheelFilename as exc:
        raise UpdateError(f"{filename} is not a wheel file name ({exc})") from exc


def choose(files: list[dict], tags: list[Tag] | None = None) -> list[dict]:
    """The manifest entries this interpreter installs: per project, its best-ranked wheel.

    ``tags`` is the interpreter's supported tags, most preferred first (what pip
    ranks by). A project with wheels but none this machine can run refuses the
    whole release, naming the project and the machine, before anything is unpacked.
    """
    ranking = {tag: rank for rank, tag in enumerate(tags if tags is not None else sys_tags())}
    best: dict[str, tuple[int, dict]] = {}
    unusable: set[str] = set()
    for entry in files:
        ranks = [ranking[t] for t in wheel_tags(entry["file"]) if t in ranking]
        if not ranks:
            unusable.add(entry["name"])
            continue
        if entry["name"] not in best or min(ranks) < best[entry["name"]][0]:
            best[entry["name"]] = (min(ranks), entry)
    missing = sorted(unusable - best.keys())
    if missing:
        machine = next(iter(ranking), None)
        raise UpdateError(
            f"the release has no wheel of {', '.join(missing)} for this machine ({machine}): "
            "rebuild it with wheels for the boxes' platform (docs/updates.md)"
        )
    return sorted((entry for _, entry in best.values()), key=lambda e: e["name"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(wheels_dir: Path, version: str, out: Path, *, allow_incomplete: bool = False) -> dict:
    """Write the bundle for ``version`` to ``out``; returns its manifest.

    Deterministic (sorted members, zero mtimes): the same wheels give the same
    bytes, so re-publishing a release does not make every box download it again.
    """
    version_key(version)
    wheels = sorted(
        (Wheel.parse(p) for p in wheels_dir.glob("*.whl")), key=lambda w: (w.name, w.path.name)
    )
    if not wheels:
        raise UpdateError(f"no wheels in {wheels_dir}: build them first (docs/updates.md)")
    by_name = {w.name: w for w in wheels}
    projects = [w for w in wheels if w.name == PROJECT]
    if len(projects) > 1:
        raise UpdateError(f"{wheels_dir} holds more than one {PROJECT} wheel: keep one")
    project = by_name.get(PROJECT)
    if project is None:
        raise UpdateError(f"{wheels_dir} has no {PROJECT} wheel")
    if project.version != version:
        raise UpdateError(
            f"the {PROJECT} wheel is version {project.version}, not {version}: "
            "build the wheel for this release"
        )
    missing: set[str] = set()
    scripts: dict[str, str] = {}
    for wheel in wheels:
        wheel_tags(wheel.path.name)  # a name pip would refuse fails here, not on the boxes
        required, found = wheel.metadata()
        if wheel is project:
            scripts = found
        missing.update(name for name in required if name not in by_name)
    if missing and not allow_incomplete:
        raise UpdateError(
            "the release would not install offline: no wheel for "
            + ", ".join(sorted(missing))
            + f" in {wheels_dir}"
        )
    manifest = {
        "format": FORMAT,
        "project": PROJECT,
        "version": version,
        "scripts": scripts,
        "wheels": [
            {"file": w.path.name, "name": w.name, "version": w.version, "sha256": _sha256(w.path)}
            for w in wheels
        ],
        # launchers of a complete release run isolated from the system's site-packages
        "isolated": not missing,
        "missing": sorted(missing),
    }
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        for wheel in wheels:
            _add(tar, f"wheels/{wheel.path.name}", wheel.path.read_bytes())
    os.replace(tmp, out)
    return manifest


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def read_manifest(bundle: Path) -> dict:
    try:
        with tarfile.open(bundle, "r:") as tar:
            member = tar.getmember(MANIFEST)
            handle = tar.extractfile(member)
            if handle is None:
                raise KeyError(MANIFEST)
            manifest = json.loads(handle.read())
    except (tarfile.TarError, KeyError, ValueError, OSError) as exc:
        raise UpdateError(f"the release bundle {bundle.name} is unreadable ({exc})") from exc
    if manifest.get("format") != FORMAT or manifest.get("project") != PROJECT:
        raise UpdateError(f"{bundle.name} is not a {PROJECT} release bundle of a known format")
    return manifest


def unpack(bundle: Path, dest: Path, python: str) -> dict:
    """Install every wheel of ``bundle`` into ``dest`` (a fresh folder); returns the manifest.

    ``release.json`` is written last: a folder without it is never a release.
    """
    manifest = read_manifest(bundle)
    listed = {w["file"] for w in manifest["wheels"]}
    chosen = choose(manifest["wheels"])
    expected = {w["file"]: w["sha256"] for w in chosen}
    site = dest / "site"
    site.mkdir(parents=True)
    with tarfile.open(bundle, "r:") as tar:
        for member in tar.getmembers():
            if member.name == MANIFEST:
                continue
            name = PurePosixPath(member.name)
            if not member.isfile() or name.parent != PurePosixPath("wheels"):
                raise UpdateError(f"unexpected member {member.name!r} in the release bundle")
            if name.name not in listed:
                raise UpdateError(f"{name.name} is in the bundle but not in its manifest")
            if name.name not in expected:
                continue  # another machine's wheel of a project this one has
            handle = tar.extractfile(member)
            if handle is None:
                raise UpdateError(f"cannot read {member.name} from the release bundle")
            data = handle.read()
            if hashlib.sha256(data).hexdigest() != expected.pop(name.name):
                raise UpdateError(f"{name.name} does not match the bundle's manifest")
            _install_wheel(data, name.name, site)
    if expected:
        raise UpdateError(f"the release bundle lacks {', '.join(sorted(expected))}")
    bin_dir = dest / "bin"
    bin_dir.mkdir()
    flags = "-IS" if manifest.get("isolated") else "-I"
    for script, target in manifest.get("scripts", {}).items():
        _write_launcher(bin_dir / script, target, python, flags)
    release = {
        "version": manifest["version"],
        "python": python,
        "wheels": len(chosen),
        "isolated": bool(manifest.get("isolated")),
    }
    (dest / RELEASE_FILE).write_text(json.dumps(release, indent=1), "utf-8")
    return manifest


def _install_wheel(data: bytes, filename: str, site: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            parts = PurePosixPath(info.filename).parts
            if info.filename.startswith("/") or ".." in parts or "\\" in info.filename:
                raise UpdateError(f"{filename} holds an unsafe path {info.filename!r}")
            if parts[0].endswith(".data"):
                # purelib/platlib belong in site; scripts, headers and data are not needed
                # to run the appliance, whose launchers come from entry points
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                parts = parts[2:]
            target = site.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, target.open("wb") as out:
                while block := src.read(1 << 20):
                    out.write(block)


_LAUNCHER = """#!{python} {flags}
# Launcher for one commune-edge release, written at install time.
# It runs this release's own copy of every package: sys.path starts with the
# release's site folder, resolved through symlinks, so a switch of 'current'
# never mixes two releases in one process. With -S (a complete release) the
# system's site-packages are not on the path at all.
import importlib
import os
import site
import sys

release = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
before = len(sys.path)
site.addsitedir(os.path.join(release, "site"))
added = sys.path[before:]
del sys.path[before:]
sys.path[:0] = added
os.environ["EDGE_RELEASE"] = release
target = importlib.import_module({module!r})
for attribute in {attributes!r}:
    target = getattr(target, attribute)
sys.exit(target())
"""


def _write_launcher(path: Path, target: str, python: str, flags: str) -> None:
    module, _, attr = target.partition(":")
    text = _LAUNCHER.format(
        python=python, flags=flags, module=module.strip(), attributes=attr.strip().split(".")
    )
    path.write_text(text, "utf-8")
    path.chmod(0o755)
