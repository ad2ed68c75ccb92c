"""The window's pre-Qt check names missing system packages in one line (issue 14.1)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from desktop import preflight

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="xcb is Linux only")

LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /x/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f)
"""


def _fake_ldd(tmp_path, output: str) -> str:
    script = tmp_path / "ldd"
    script.write_text("#!/bin/sh\ncat <<'EOF'\n" + output + "EOF\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_missing_libraries_parsed_once_each():
    assert preflight.missing_libraries(LDD_MISSING) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]


def test_message_names_the_exact_packages(tmp_path):
    if preflight._xcb_plugin() is None:
        pytest.skip("PySide6 wheel without the xcb plugin")
    env = {"DISPLAY": ":99"}
    message = preflight.check_display(env, ldd=_fake_ldd(tmp_path, LDD_MISSING))
    assert message is not None and "\n" not in message
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in message
    # Qt's own message blames libxcb-cursor0, which is present: it must not be named.
    assert "libxcb-cursor0" not in message


def test_nothing_missing_means_no_message(tmp_path):
    ok = "\tlibxcb-icccm.so.4 => /lib/libxcb-icccm.so.4 (0x1)\n"
    assert preflight.check_display({"DISPLAY": ":0"}, ldd=_fake_ldd(tmp_path, ok)) is None


def test_other_platforms_are_not_checked(tmp_path):
    ldd = _fake_ldd(tmp_path, LDD_MISSING)
    assert preflight.check_display({"QT_QPA_PLATFORM": "offscreen"}, ldd=ldd) is None
    wayland = {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}
    assert preflight.check_display(wayland, ldd=ldd) is None


def test_no_screen_at_all():
    message = preflight.check_display({})
    assert message is not None and "DISPLAY" in message


def test_unknown_library_still_named():
    hint = preflight.install_hint(["libweird.so.9"])
    assert "libweird.so.9" in hint


def test_lodestar_stops_before_qt_with_one_line(tmp_path):
    """`lodestar` (the window) on a machine missing libraries exits 2 with one stderr line."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = ":987"
    env["PATH"] = f"{tmp_path}{os.pathsep}{env.get('PATH', '')}"
    _fake_ldd(tmp_path, LDD_MISSING)
    if preflight._xcb_plugin() is None:
        pytest.skip("PySide6 wheel without the xcb plugin")
    code = "import sys; from indexer.cli.main import main; r = main(['--data-dir', sys.argv[1]]);" \
        "print('qt' if 'PySide6.QtWidgets' in sys.modules else 'no-qt'); sys.exit(r)"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data")], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.strip() == "no-qt"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "libxcb-icccm4" in lines[0]
