"""Opt-in start at login (`lodestar watch`) and the desktop launcher entry.

Linux: an XDG autostart entry ($XDG_CONFIG_HOME/autostart/lodestar.desktop).
macOS: a LaunchAgent plist (~/Library/LaunchAgents), marked background/low priority.
Windows: the per-user Run registry key (no shortcut files to manage).
Nothing here runs unless the person turns it on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

APP_ID = "lodestar"
LAUNCH_AGENT_LABEL = "io.github.lodestar.watch"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "Lodestar"
RESOURCES = Path(__file__).resolve().parents[2] / "resources"


@dataclasses.dataclass
class AutostartState:
    enabled: bool
    location: str  # file path or registry key
    command: str = ""


def watch_command(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The command that starts the watcher: the installed `lodestar`, else this Python."""
    exe = shutil.which("lodestar")
    cmd = [exe] if exe else [sys.executable, "-m", "indexer.cli.main"]
    cmd.append("watch")
    if data_dir is not None:
        cmd += ["--data-dir", os.path.abspath(os.fspath(data_dir))]
    return cmd


def _desktop_exec(cmd: list[str]) -> str:
    """Quote for a .desktop Exec key (Desktop Entry spec: double quotes, escaped, then the
    file's string escaping on top)."""
    out = []
    for arg in cmd:
        if arg and not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`%'):
            out.append(arg)
        else:
            escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
            out.append(f'"{escaped.replace("%", "%%")}"')
    # The string-level escape (\\ for a backslash) applies before the quoting rule.
    return " ".join(out).replace("\\", "\\\\")


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / default


def entry_path(platform: str = sys.platform) -> Path:
    if platform.startswith("linux") or platform.startswith("freebsd"):
        return _xdg("XDG_CONFIG_HOME", ".config") / "autostart" / f"{APP_ID}.desktop"
    if platform == "darwin":
        return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
    return Path(RUN_KEY) / RUN_VALUE


def _write_private(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _autostart_desktop(cmd: list[str]) -> str:
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=Lodestar (keep index up to date)\n"
        "Comment=Watches your folders so Lodestar search stays current\n"
        f"Exec={_desktop_exec(cmd)}\n"
        f"Icon={APP_ID}\n"
        "Terminal=false\n"
        "NoDisplay=true\n"
        "X-GNOME-Autostart-enabled=true\n"
        "X-GNOME-Autostart-Delay=30\n"
    )


def _launch_agent(cmd: list[str]) -> bytes:
    logs = Path.home() / "Library" / "Logs" / "Lodestar"
    return plistlib.dumps(
        {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": cmd,
            "RunAtLoad": True,
            "KeepAlive": False,
            # Polite: background QoS, low-priority I/O, nice.
            "ProcessType": "Background",
            "LowPriorityIO": True,
            "Nice": 10,
            "StandardErrorPath": str(logs / "watch.log"),
        }
    )


def _winreg() -> Any:
    import winreg

    return winreg


def enable(
    cmd: list[str] | None = None, platform: str = sys.platform, registry: Any = None
) -> AutostartState:
    """Start `lodestar watch` at login. Idempotent."""
    cmd = cmd or watch_command()
    path = entry_path(platform)
    if platform.startswith("linux") or platform.startswith("freebsd"):
        _write_private(path, _autostart_desktop(cmd).encode("utf-8"))
    elif platform == "darwin":
        _write_private(path, _launch_agent(cmd))
    else:
        reg = registry or _winreg()
        with reg.CreateKey(reg.HKEY_CURRENT_USER, RUN_KEY) as key:
            reg.SetValueEx(key, RUN_VALUE, 0, reg.REG_SZ, subprocess.list2cmdline(cmd))
    log.info("start at login enabled: %s", path)
    return AutostartState(True, str(path), " ".join(cmd))


def disable(platform: str = sys.platform, registry: Any = None) -> AutostartState:
    """Remove the login entry (nothing else). Idempotent."""
    path = entry_path(platform)
    if platform.startswith("linux") or platform.startswith("freebsd") or platform == "darwin":
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    else:
        reg = registry or _winreg()
        try:
            with reg.OpenKey(reg.HKEY_CURRENT_USER, RUN_KEY, 0, reg.KEY_SET_VALUE) as key:
                reg.DeleteValue(key, RUN_VALUE)
        except FileNotFoundError:
            pass
    return AutostartState(False, str(path))


def status(platform: str = sys.platform, registry: Any = None) -> AutostartState:
    path = entry_path(platform)
    if platform.startswith("linux") or platform.startswith("freebsd"):
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return AutostartState(False, str(path))
        exec_line = next((ln[5:] for ln in text.splitlines() if ln.startswith("Exec=")), "")
        hidden = any(ln.strip() in ("Hidden=true", "X-GNOME-Autostart-enabled=false") for ln in text.splitlines())
        return AutostartState(not hidden, str(path), exec_line)
    if platform == "darwin":
        try:
            data = plistlib.loads(path.read_bytes())
        except (OSError, plistlib.InvalidFileException, ValueError):
            return AutostartState(False, str(path))
        return AutostartState(True, str(path), " ".join(data.get("ProgramArguments", [])))
    reg = registry or _winreg()
    try:
        with reg.OpenKey(reg.HKEY_CURRENT_USER, RUN_KEY) as key:
            value, _ = reg.QueryValueEx(key, RUN_VALUE)
    except FileNotFoundError:
        return AutostartState(False, str(path))
    return AutostartState(True, str(path), str(value))


def install_launcher(resources: Path = RESOURCES, platform: str = sys.platform) -> list[Path]:
    """Put Lodestar in the desktop's app menu (Linux): .desktop file + icon. Harmless if
    the icon is missing; a no-op elsewhere (the packager handles macOS/Windows)."""
    if not (platform.startswith("linux") or platform.startswith("freebsd")):
        return []
    data_home = _xdg("XDG_DATA_HOME", ".local/share")
    written: list[Path] = []
    src = resources / f"{APP_ID}.desktop"
    try:
        text = src.read_text(encoding="utf-8")
    except OSError as exc:
        log.warning("launcher entry %s is missing (%s); not installing it", src, exc)
        return written
    exe = shutil.which("lodestar")
    if exe is None:
        # Not on PATH (e.g. a virtualenv): point the menu at this interpreter instead.
        exec_line = "Exec=" + _desktop_exec([sys.executable, "-m", "indexer.cli.main"])
        text = "\n".join(exec_line if ln.startswith("Exec=") else ln for ln in text.splitlines()) + "\n"
    dest = data_home / "applications" / f"{APP_ID}.desktop"
    _write_private(dest, text.encode("utf-8"))
    written.append(dest)
    icon = resources / "icons" / f"{APP_ID}.svg"
    if icon.is_file():
        icon_dest = data_home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
        _write_private(icon_dest, icon.read_bytes())
        written.append(icon_dest)
    else:
        log.info("icon %s not found; the launcher will use a generic icon", icon)
    for size in (16, 32, 64, 128, 256):  # bitmaps for desktops that ignore SVG
        png = resources / "icons" / f"{APP_ID}-{size}.png"
        if png.is_file():
            png_dest = data_home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
            _write_private(png_dest, png.read_bytes())
            written.append(png_dest)
    return written
