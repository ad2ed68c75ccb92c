"""Settings, watched folders and the data directory, shared by the CLI and the window.

Everything Lodestar derives lives in one per-user data directory (0700, files 0600):
the LanceDB store, thumbnails, settings and logs. ``LODESTAR_DATA_DIR`` or
``--data-dir`` override the platform default; tests always use a temporary one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
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
    """Typed, persisted settings (``settings.json`` in the data directory).

    Besides the saved fields, an instance carries what `load_settings` found wrong
    (``problems``: one line each, ``invalid_fields``: the fields that fell back to their
    default) and the keys it did not know (``extra``: kept, and saved back unchanged).
    """

    folders: list[str] = dataclasses.field(default_factory=list)
    text_model: str = DEFAULT_TEXT_MODEL
    clip_model: str = DEFAULT_CLIP_MODEL
    clip_pretrained: str = DEFAULT_CLIP_PRETRAINED
    clip_checkpoint: str = ""  # local .safetensors file; wins over everything else
    allow_download: bool = True  # may the CLIP weights be downloaded on first use?
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    text_backend: str = "torch"  # torch | onnx | onnx-int8 (CPU; needs the [onnx] extra) — docs/PERFORMANCE.md
    excludes: list[str] = dataclasses.field(default_factory=list)  # user glob patterns
    skip_hidden: bool = True
    honour_gitignore: bool = True
    max_text_mb: float = 20.0  # extracted-text cap per file
    max_text_file_mb: float = 200.0  # text-like files larger than this are name-only
    max_document_mb: float = 100.0  # pdf/docx/epub larger than this are name-only
    max_image_mb: float = 100.0
    reconcile_interval_s: float = 900.0  # 0: no periodic full check
    start_at_login: bool = False
    keep_running_in_tray: bool = True
    welcome_done: bool = False
    # Read the words inside pictures and scanned PDF pages (issue 16). Off: no recognition
    # runs; words read before stay searchable (Clear index removes them).
    recognise_text: bool = True

    def __post_init__(self) -> None:
        # Not fields: never saved, never compared.
        self.problems: list[str] = []
        self.invalid_fields: frozenset[str] = frozenset()
        self.extra: dict[str, Any] = {}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Settings from parsed JSON, checked field by field: a wrong value falls back
        to its default (with a line in ``problems``), everything valid is kept."""
        defaults = cls()
        values: dict[str, Any] = {}
        problems: list[str] = []
        invalid: set[str] = set()
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value, problem = _check_field(f.name, data[f.name], getattr(defaults, f.name))
            values[f.name] = value
            if problem:
                problems.append(f"{SETTINGS_FILE}: {problem}")
                invalid.add(f.name)
        settings = cls(**values)
        settings.problems = problems
        settings.invalid_fields = frozenset(invalid)
        names = {f.name for f in dataclasses.fields(cls)}
        settings.extra = {k: v for k, v in data.items() if k not in names}
        return settings

    def to_dict(self) -> dict[str, Any]:
        out = dict(getattr(self, "extra", {}))  # keys of another version survive a save
        out.update(dataclasses.asdict(self))
        return out


# -- checking settings.json, field by field ------------------------------------------------
DEVICES = ("auto", "cpu", "cuda", "mps")
TEXT_BACKENDS = ("torch", "onnx", "onnx-int8")
_BOOL_FIELDS = ("allow_download", "skip_hidden", "honour_gitignore", "start_at_login",
                "keep_running_in_tray", "welcome_done", "recognise_text")
# (lowest allowed, highest allowed, lowest is allowed itself?)
_NUMBER_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "max_text_mb": (0.0, 4096.0, False),
    "max_text_file_mb": (0.0, 1024.0 * 1024, False),
    "max_document_mb": (0.0, 1024.0 * 1024, False),
    "max_image_mb": (0.0, 1024.0 * 1024, False),
    "reconcile_interval_s": (0.0, 30 * 86400.0, True),
}


def _show(value: Any) -> str:
    """A short one-line rendering of a JSON value for a message."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text_ok(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and "\x00" not in value


def _absolute(value: str) -> str | None:
    """``value`` with ``~`` expanded if that makes it an absolute path, else None."""
    path = os.path.expanduser(value)
    return path if os.path.isabs(path) else None


def _check_field(name: str, value: Any, default: Any) -> tuple[Any, str | None]:
    """(value to use, problem or None) for one field read from settings.json."""
    fallback = f"using the default ({_show(default)})"
    if name in ("folders", "excludes"):
        what = "absolute folder paths" if name == "folders" else "file name patterns"
        if not isinstance(value, list):
            return list(default), f"`{name}` must be a list of {what}, not {_show(value)}; {fallback}"
        kept: list[str] = []
        dropped: list[Any] = []
        for item in value:
            good = _absolute(item) if name == "folders" and _text_ok(item) else item if _text_ok(item) else None
            if good is None:
                dropped.append(item)
            elif good not in kept:
                kept.append(good)
        if dropped:
            shown = ", ".join(_show(d) for d in dropped[:3]) + (", ..." if len(dropped) > 3 else "")
            return kept, (f"`{name}`: ignored {len(dropped)} of its entries, which are not {what} ({shown}); "
                          f"kept the other {len(kept)}")
        return kept, None
    if name in _BOOL_FIELDS:
        if isinstance(value, bool):
            return value, None
        return default, f"`{name}` must be true or false, not {_show(value)}; {fallback}"
    if name in _NUMBER_BOUNDS:
        low, high, low_ok = _NUMBER_BOUNDS[name]
        if (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and (value > low or (low_ok and value == low)) and value <= high):
            return float(value), None
        rule = f"{'at least' if low_ok else 'more than'} {low:.0f} and at most {high:.0f}"
        return default, f"`{name}` must be a number {rule}, not {_show(value)}; {fallback}"
    if name == "device":
        if isinstance(value, str) and (value.strip().lower() in DEVICES
                                       or re.fullmatch(r"cuda:\d{1,3}", value.strip().lower())):
            return value.strip().lower(), None
        return default, f"`device` must be one of {', '.join(DEVICES)} or cuda:N, not {_show(value)}; {fallback}"
    if name == "text_backend":
        if isinstance(value, str) and value in TEXT_BACKENDS:
            return value, None
        return default, f"`text_backend` must be one of {', '.join(TEXT_BACKENDS)}, not {_show(value)}; {fallback}"
    if name == "clip_checkpoint":
        if value == "":
            return "", None
        path = _absolute(value) if _text_ok(value) else None
        if path is None:
            return default, (f"`clip_checkpoint` must be the absolute path of a .safetensors file (or \"\"), "
                             f"not {_show(value)}; {fallback}")
        return path, None
    if name == "clip_pretrained":  # "" means no pretrained tag
        if value == "" or _text_ok(value):
            return value, None
        return default, f"`clip_pretrained` must be a text, not {_show(value)}; {fallback}"
    # text_model, clip_model: names (or a local folder for the text model)
    if _text_ok(value):
        return value, None
    return default, f"`{name}` must be a non-empty text, not {_show(value)}; {fallback}"


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


class NoIndexYet(ConfigError):
    """A read-only command was pointed at a data directory that does not exist."""


def open_paths(data_dir: str | os.PathLike[str] | None = None, *, create: bool = True) -> AppPaths:
    """Resolve and create the data directory (private to the user).

    ``create=False`` is for commands that only read (status, search): a missing data
    directory raises `NoIndexYet` instead of being made, so a mistyped ``--data-dir``
    leaves nothing behind and says so.
    """
    path = Path(data_dir).expanduser() if data_dir else default_data_dir()
    if create:
        return AppPaths(ensure_private_dir(path))
    path = path.absolute()
    if not path.exists():
        raise NoIndexYet(
            f"there is no index at {path} yet (no such folder); "
            "make one with `lodestar index FOLDER`, or check --data-dir / LODESTAR_DATA_DIR"
        )
    if not path.is_dir():
        raise ConfigError(f"data directory {path} is not a folder")
    return AppPaths(path)


Reporter = Callable[[str], None]
_reporter: Reporter | None = None
_reported: set[str] = set()


def set_reporter(reporter: Reporter | None) -> None:
    """Who tells the person what Lodestar noticed or is about to do (a repaired
    settings file, an announced download): the CLI prints one stderr line each.
    Without one, lines are logged as warnings."""
    global _reporter
    _reporter = reporter
    _reported.clear()


def report(line: str, *, once: bool = False) -> None:
    """Tell the person ``line`` (``once``: not again in this process)."""
    if once:
        if line in _reported:
            return
        _reported.add(line)
    if _reporter is not None:
        _reporter(line)
    else:
        log.warning("%s", line)


def load_settings(paths: AppPaths) -> Settings:
    """The settings in the data directory; never fails on what the file holds.

    A file that cannot be read or parsed gives the defaults; a wrong value gives its
    field's default and keeps every valid one. Either way the file as it was is kept
    aside (``settings.json.bad-<time>``, once per content) before anything rewrites
    it, and each problem is one line in ``Settings.problems``, also reported (see
    `set_reporter`).
    """
    target = paths.settings
    all_fields = frozenset(f.name for f in dataclasses.fields(Settings))
    try:
        raw = target.read_bytes()
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        # Unreadable, or a folder: move it out of the way so that no later save can destroy it.
        why = exc.strerror or str(exc)
        aside = _move_aside(target)
        if aside is None:
            raise ConfigError(f"cannot read settings {target}: {why}; fix its permissions or move it away") from exc
        settings = Settings()
        settings.invalid_fields = all_fields
        settings.problems = [
            f"{SETTINGS_FILE} could not be read ({why}); using the default settings. It was moved to {aside}"
        ]
        for line in settings.problems:
            report(line, once=True)
        return settings
    data, broken = _parse_settings(raw)
    if broken:
        settings = Settings()
        settings.invalid_fields = all_fields
        settings.problems = [f"{SETTINGS_FILE} {broken}; using the default settings"]
    else:
        settings = Settings.from_dict(data)
    if settings.problems:
        aside = _keep_copy(target, raw)
        settings.problems.append(
            f"{SETTINGS_FILE}: the file as it was is kept at {aside}; correct it there or in the settings window"
            if aside is not None else f"{SETTINGS_FILE}: no copy of the file as it was could be kept next to it")
        for line in settings.problems:
            report(line, once=True)
    return settings


def _parse_settings(raw: bytes) -> tuple[dict[str, Any], str]:
    """(the JSON object, "") or ({}, what is wrong with the file)."""
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (some editors add one) is fine
    except UnicodeDecodeError as exc:
        return {}, f"is not UTF-8 text (byte {exc.start})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, f"is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})"
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 5,000 digits, nesting 10,000 deep
        return {}, f"is not usable JSON ({type(exc).__name__})"
    if not isinstance(data, dict):
        return {}, f"holds a JSON {type(data).__name__}, not an object of settings"
    return data, ""


def _aside_name(target: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = target.with_name(f"{target.name}.bad-{stamp}")
    n = 1
    while os.path.lexists(candidate):
        n += 1
        candidate = target.with_name(f"{target.name}.bad-{stamp}-{n}")
    return candidate


def _keep_copy(target: Path, raw: bytes) -> Path | None:
    """A private copy of ``raw`` beside ``target`` (an existing identical one is reused)."""
    try:
        for old in sorted(target.parent.glob(f"{target.name}.bad-*")):
            try:
                if old.is_file() and old.stat().st_size == len(raw) and old.read_bytes() == raw:
                    return old
            except OSError:
                continue
        aside = _aside_name(target)
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        return aside
    except OSError as exc:
        log.warning("cannot keep a copy of %s: %s", target, exc)
        return None


def _move_aside(target: Path) -> Path | None:
    try:
        aside = _aside_name(target)
        os.rename(target, aside)
        return aside
    except OSError as exc:
        log.warning("cannot move %s aside: %s", target, exc)
        return None


def save_settings(paths: AppPaths, settings: Settings) -> None:
    write_json_atomic(paths.settings, settings.to_dict(), indent=2)


def write_json_atomic(target: Path, data: Any, *, indent: int | None = None) -> None:
    """Temp file + fsync + rename, 0600: a crash never leaves half a file behind."""
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:  # a path with undecodable bytes (lone surrogates): \udcxx escapes read back
        encoded = json.dumps(data, indent=indent, ensure_ascii=True).encode("ascii")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(encoded)
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


def read_json(path: Path) -> Any:
    """What a JSON file in the data directory holds, or None when it is missing,
    unreadable, not UTF-8 or not JSON: a damaged status or memo file must never stop
    a command. Callers still check the shape of what they get."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def as_number(value: Any, low: float = -math.inf, high: float = math.inf) -> float | None:
    """``value`` as a float if it is a finite JSON number within [low, high], else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return number if math.isfinite(number) and low <= number <= high else None


def normalise_folder(path: str | os.PathLike[str]) -> str:
    """Absolute, user-expanded, without trailing separator; symlinks resolved."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))
