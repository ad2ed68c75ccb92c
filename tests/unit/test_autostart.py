"""Start-at-login entries and the launcher, written only under temporary HOME/XDG dirs."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

import pytest

import indexer.cli.main as cli
from indexer.library import autostart
from indexer.library.settings import load_settings, open_paths


def parse_exec(line: str) -> list[str]:
    """Split an Exec value as the Desktop Entry spec says (quotes, \\ escapes, %%)."""
    line = line.replace("\\\\", "\\")  # string-level unescape comes first
    args: list[str] = []
    cur, quoted, i, started = "", False, 0, False
    while i < len(line):
        c = line[i]
        if quoted and c == "\\" and i + 1 < len(line) and line[i + 1] in '"`$\\':
            cur, i = cur + line[i + 1], i + 2
            continue
        if c == '"':
            quoted, started = not quoted, True
        elif c == " " and not quoted:
            if started or cur:
                args.append(cur)
            cur, started = "", False
        elif c == "%" and i + 1 < len(line) and line[i + 1] == "%":
            cur, i = cur + "%", i + 1
        else:
            cur += c
        i += 1
    if started or cur:
        args.append(cur)
    return args


@pytest.fixture(autouse=True)
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "share"))
    return home


def test_linux_autostart_on_off(fake_home: Path) -> None:
    cmd = ["/opt/my apps/lodestar", "watch", "--data-dir", "/data/with $dollar, \\back and 100%"]
    st = autostart.enable(cmd, platform="linux")
    entry = fake_home / "cfg" / "autostart" / "lodestar.desktop"
    assert st.enabled and Path(st.location) == entry
    text = entry.read_text()
    assert "[Desktop Entry]" in text and "Type=Application" in text
    exec_line = next(ln[5:] for ln in text.splitlines() if ln.startswith("Exec="))
    assert parse_exec(exec_line) == cmd  # quoting survives for spaces and $ (spec escapes)
    assert autostart.status("linux").enabled
    autostart.enable(cmd, platform="linux")  # idempotent
    assert autostart.disable("linux").enabled is False
    assert not entry.exists() and not autostart.status("linux").enabled
    autostart.disable("linux")  # idempotent


def test_macos_launch_agent(fake_home: Path) -> None:
    cmd = ["/usr/local/bin/lodestar", "watch"]
    st = autostart.enable(cmd, platform="darwin")
    plist = fake_home / "Library" / "LaunchAgents" / f"{autostart.LAUNCH_AGENT_LABEL}.plist"
    data = plistlib.loads(plist.read_bytes())
    assert data["ProgramArguments"] == cmd and data["RunAtLoad"] is True
    assert data["ProcessType"] == "Background" and data["LowPriorityIO"] is True
    assert autostart.status("darwin").enabled and st.enabled
    autostart.disable("darwin")
    assert not plist.exists()


class FakeWinreg:
    HKEY_CURRENT_USER = "HKCU"
    REG_SZ = 1
    KEY_SET_VALUE = 2

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}

    class _Key:
        def __init__(self, path: str) -> None:
            self.path = path

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *a: object) -> None:
            pass

    def CreateKey(self, hive: str, path: str) -> Any:
        return self._Key(path)

    def OpenKey(self, hive: str, path: str, *a: Any) -> Any:
        return self._Key(path)

    def SetValueEx(self, key: Any, name: str, _r: int, _t: int, value: str) -> None:
        self.values[(key.path, name)] = value

    def QueryValueEx(self, key: Any, name: str) -> tuple[str, int]:
        try:
            return self.values[(key.path, name)], self.REG_SZ
        except KeyError:
            raise FileNotFoundError(name) from None

    def DeleteValue(self, key: Any, name: str) -> None:
        if self.values.pop((key.path, name), None) is None:
            raise FileNotFoundError(name)


def test_windows_run_key() -> None:
    reg = FakeWinreg()
    autostart.enable([r"C:\Program Files\Lodestar\lodestar.exe", "watch"], platform="win32", registry=reg)
    assert reg.values[(autostart.RUN_KEY, "Lodestar")] == r'"C:\Program Files\Lodestar\lodestar.exe" watch'
    assert autostart.status("win32", registry=reg).enabled
    autostart.disable("win32", registry=reg)
    assert not autostart.status("win32", registry=reg).enabled
    autostart.disable("win32", registry=reg)  # idempotent


def test_install_launcher_copies_entry_and_icon(fake_home: Path, tmp_path: Path) -> None:
    written = autostart.install_launcher(platform="linux")
    share = fake_home / "share"
    desktop = share / "applications" / "lodestar.desktop"
    assert desktop in written
    text = desktop.read_text()
    assert "Name=Lodestar" in text and "Icon=lodestar" in text and "Categories=Utility;FileTools;" in text
    if (autostart.RESOURCES / "icons" / "lodestar.svg").is_file():
        assert (share / "icons" / "hicolor" / "scalable" / "apps" / "lodestar.svg").is_file()
    # Harmless without icons.
    res = tmp_path / "res"
    res.mkdir()
    (res / "lodestar.desktop").write_text("[Desktop Entry]\nExec=lodestar\n")
    assert autostart.install_launcher(res, platform="linux") == [desktop]
    assert autostart.install_launcher(tmp_path / "missing", platform="linux") == []
    assert autostart.install_launcher(platform="darwin") == []


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="XDG autostart")
def test_cli_on_off_status_sets_setting(fake_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert cli.main(["autostart", "status", "--data-dir", str(data)]) == 0
    assert "no" in capsys.readouterr().out
    assert cli.main(["autostart", "on", "--data-dir", str(data)]) == 0
    assert load_settings(open_paths(data)).start_at_login is True
    entry = fake_home / "cfg" / "autostart" / "lodestar.desktop"
    exec_line = next(ln[5:] for ln in entry.read_text().splitlines() if ln.startswith("Exec="))
    argv = parse_exec(exec_line)
    assert "watch" in argv and argv[argv.index("--data-dir") + 1] == str(data.resolve())
    assert (fake_home / "share" / "applications" / "lodestar.desktop").is_file()
    capsys.readouterr()
    assert cli.main(["autostart", "status", "--data-dir", str(data)]) == 0
    assert "yes" in capsys.readouterr().out
    assert cli.main(["autostart", "off", "--data-dir", str(data)]) == 0
    assert not entry.exists()
    assert load_settings(open_paths(data)).start_at_login is False
