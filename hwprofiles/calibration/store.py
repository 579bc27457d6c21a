"""Where saved calibration profiles live: ``$LLMCAP_HOME/profiles/<name>`` (default ~/.llmcap).

`llmcap calibrate` without ``--out`` saves under this root as ``<hostname>-<device>``;
anything that accepts a hardware preset finds a saved profile by that name (`find_saved`).
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from hwprofiles.errors import UserError
from hwprofiles.inputs import path_kind

PROFILE_FILE = "profile.toml"
FORMAT = "llmcap-calibration/1"
"""Value of the `format` key in profile.toml; bumped when the layout changes."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_profile_root() -> Path:
    """``$LLMCAP_HOME/profiles`` if LLMCAP_HOME is set, else ``~/.llmcap/profiles``."""
    home = os.environ.get("LLMCAP_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".llmcap"
    return base / "profiles"


def default_name(device: str) -> str:
    """``<hostname>-<device>``, reduced to letters, digits, '.', '_' and '-'."""
    return safe_name(f"{socket.gethostname()}-{device}")


def safe_name(name: str) -> str:
    """`name` as a single safe path component; ValueError if nothing usable is left."""
    cleaned = _UNSAFE.sub("-", name).strip(".-")
    if not cleaned:
        raise UserError(f"name: {name!r} has no letters or digits to name a profile with")
    return cleaned


def is_profile_dir(path: Path) -> bool:
    """True if `path` is a directory holding a calibration's profile.toml."""
    return path_kind(path) == "dir" and path_kind(path / PROFILE_FILE) == "file"


def find_saved(name: str, root: Path | None = None) -> Path | None:
    """The saved profile directory called `name` under `root` (default root), or None."""
    if not name or _UNSAFE.search(name) or name in (".", ".."):
        return None
    path = (root or default_profile_root()) / name
    return path if is_profile_dir(path) else None


def list_saved(root: Path | None = None) -> list[str]:
    """Names of the saved profiles under `root` (default root), sorted."""
    root = root or default_profile_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if is_profile_dir(p))
