"""Checks made before Qt is imported, so a missing system library is one clear line.

Qt's xcb platform plugin links against a dozen small X11 libraries that a minimal
Linux install may lack. Without them Qt aborts with a message that often names the
wrong library. This module asks the dynamic linker (`ldd`) which of the plugin's
libraries are missing and names the packages that provide them. It imports no Qt.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# soname → (Debian/Ubuntu package, Fedora package). The README lists the same names.
_PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libSM.so.6": ("libsm6", "libSM"),
    "libICE.so.6": ("libice6", "libICE"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$", re.MULTILINE)


def missing_libraries(ldd_output: str) -> list[str]:
    """The sonames `ldd` reports as "not found", in order, without repeats."""
    seen: dict[str, None] = {}
    for match in _NOT_FOUND.finditer(ldd_output):
        seen.setdefault(match.group(1))
    return list(seen)


def install_hint(sonames: list[str]) -> str:
    """One line naming the packages that provide these libraries."""
    debian = sorted({_PACKAGES[s][0] for s in sonames if s in _PACKAGES})
    fedora = sorted({_PACKAGES[s][1] for s in sonames if s in _PACKAGES})
    unknown = [s for s in sonames if s not in _PACKAGES]
    parts = []
    if debian:
        parts.append(f"on Debian/Ubuntu: sudo apt-get install {' '.join(debian)}")
        parts.append(f"on Fedora: sudo dnf install {' '.join(fedora)}")
    if unknown:
        parts.append(f"install the packages that provide {', '.join(unknown)}")
    return "; ".join(parts)


def _xcb_plugin() -> Path | None:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(list(spec.submodule_search_locations)[0]) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def _uses_xcb(env: dict[str, str]) -> bool:
    platform = env.get("QT_QPA_PLATFORM", "").strip()
    if platform:
        return platform.split(";")[0].split(":")[0] == "xcb"
    # Qt picks Wayland on a Wayland session and X11 (xcb) otherwise.
    wayland = env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "") == "wayland"
    return not wayland


def check_display(env: dict[str, str] | None = None, ldd: str | None = None) -> str | None:
    """None when the window can open here, else one line saying what to install or do.

    Linux only (macOS and Windows wheels carry what Qt needs). Never raises: a check
    that cannot run (no `ldd`, no plugin) lets Qt try and speak for itself.
    """
    env = dict(os.environ) if env is None else env
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "").strip()
    if not platform and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return (
            "no screen to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); "
            "run it inside a desktop session, or use the command line: lodestar --help"
        )
    if not _uses_xcb(env):
        return None
    plugin = _xcb_plugin()
    ldd = ldd or shutil.which("ldd")
    if plugin is None or ldd is None:
        return None
    try:
        out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    missing = missing_libraries(out)
    if not missing:
        return None
    return (
        f"the window needs system libraries that are missing ({', '.join(missing)}): "
        f"{install_hint(missing)} (README: System packages)"
    )
