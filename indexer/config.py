"""Settings, watched folders and the data directory, shared by the CLI and the window.

Everything Lodestar derives lives in one per-user data directory (0700, files 0600):
the LanceDB store, thumbnails, settings and logs. ``LODESTAR_DATA_DIR`` or
``--data-dir`` override the platform default; tests always use a temporary one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

APP_NAME = "lodestar"
SETTINGS_FILE = "settings.json"

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"

DEFAULT_EXCLUDES = [
    # Hidden files and folders are skipped separately (skip_hidden).
    ".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", "env",
    ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".cache",
    "build", "dist", "target", ".gradle", ".idea", ".Trash", ".Trash-*",
    "$RECYCLE.BIN", "System Volume Information", "*.egg-info", ".DS_Store",
    "*.tmp", "*.swp", "*.swx", "*~", ".goutputstream-*", "*___jb_tmp___", "*___jb_old___",
    "*.part", "*.crdownload",
]
IGNORE_MARKER = ".lodestarignore"
"""A folder containing this file (any content) is skipped with its whole tree."""


class ConfigError(Exception):
    """A user-facing configuration problem (bad data dir, unreadable settings)."""


def default_data_dir() -> Path:
    env = os.environ.get("LODESTAR_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (0700) and re-assert 0700/0600 on everything inside it."""
    path = path.expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create data directory {path}: {exc.strerror or exc}") from exc
    if not path.is_dir():
        raise ConfigError(f"data directory {path} is not a folder")
    tighten_permissions(path)
    return path


def tighten_permissions(path: Path) -> None:
    """Folders 0700, files 0600 under ``path`` (mkdir honours umask, so re-assert)."""
    try:
        os.chmod(path, 0o700)
    except OSError as exc:
        log.warning("cannot restrict permissions of %r: %s", str(path), exc)
        return
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames:
            _chmod_quiet(os.path.join(dirpath, name), 0o700)
        for name in filenames:
            _chmod_quiet(os.path.join(dirpath, name), 0o600)


def _chmod_quiet(p: str, mode: int) -> None:
    try:
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            return
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(p, mode)
    except OSError:
        pass


@dataclasses.dataclass
class Settings:
    """Typed, persisted settings (``settings.json`` in the data directory)."""

    folders: list[str] = dataclasses.field(default_factory=list)
    text_model: str = DEFAULT_TEXT_MODEL
    clip_model: str = DEFAULT_CLIP_MODEL
    clip_pretrained: str = DEFAULT_CLIP_PRETRAINED
    clip_checkpoint: str = ""  # local .safetensors file; wins over everything else
    allow_download: bool = True  # may the CLIP weights be downloaded on first use?
    device: str = "auto"  # auto | cpu | cuda | mps
    text_backend: str = "torch"  # torch | onnx | onnx-int8 (CPU; needs the [onnx] extra) — docs/PERFORMANCE.md
    excludes: list[str] = dataclasses.field(default_factory=list)  # user glob patterns
    skip_hidden: bool = True
    honour_gitignore: bool = True
    max_text_mb: float = 20.0  # extracted-text cap per file
    max_text_file_mb: float = 200.0  # text-like files larger than this are name-only
    max_document_mb: float = 100.0  # pdf/docx/epub larger than this are name-only
    max_image_mb: float = 100.0
    reconcile_interval_s: float = 900.0
    start_at_login: bool = False
    keep_running_in_tray: bool = True
    welcome_done: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class AppPaths:
    """Where each kind of derived data lives inside the data directory."""

    data_dir: Path

    @property
    def store(self) -> Path:
        return self.data_dir / "index.lance"

    @property
    def thumbnails(self) -> Path:
        return self.data_dir / "thumbnails"

    @property
    def settings(self) -> Path:
        return self.data_dir / SETTINGS_FILE

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def models(self) -> Path:
        return self.data_dir / "models"

    @property
    def writer_lock(self) -> Path:
        return self.data_dir / "writer.lock"

    @property
    def status_file(self) -> Path:
        return self.data_dir / "watch-status.json"


def open_paths(data_dir: str | os.PathLike[str] | None = None) -> AppPaths:
    """Resolve and create the data directory (private to the user)."""
    path = Path(data_dir).expanduser() if data_dir else default_data_dir()
    return AppPaths(ensure_private_dir(path))


def load_settings(paths: AppPaths) -> Settings:
    try:
        raw = paths.settings.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise ConfigError(f"cannot read settings {paths.settings}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        # Keep the broken file for the person to inspect, start from defaults.
        backup = paths.settings.with_suffix(".json.broken")
        log.warning("settings file %s is not valid JSON (%s); moved to %s", paths.settings, exc, backup)
        try:
            os.replace(paths.settings, backup)
        except OSError:
            pass
        return Settings()
    return Settings.from_dict(data)


def save_settings(paths: AppPaths, settings: Settings) -> None:
    write_json_atomic(paths.settings, settings.to_dict(), indent=2)


def write_json_atomic(target: Path, data: Any, *, indent: int | None = None) -> None:
    """Temp file + fsync + rename, 0600: a crash never leaves half a file behind."""
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def normalise_folder(path: str | os.PathLike[str]) -> str:
    """Absolute, user-expanded, without trailing separator; symlinks resolved."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))
