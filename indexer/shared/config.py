"""This data directory's share: which library, which part is ours, and how publishing went.

``shared.json`` (the choice: URI, part id, computer name) and ``shared-state.json`` (what
was last published: a digest per file row, the local table versions, the part's
generation, the last success and the last problem). Neither holds a credential.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from indexer.library.settings import read_json, write_json_atomic

CONFIG_FILE = "shared.json"
STATE_FILE = "shared-state.json"
CACHE_DIR = "thumbnails/shared"
"""Other parts' thumbnails, fetched for results shown here: inside the thumbnails folder, the
only place the window decodes thumbnails from (the index's own clean-up reads its top level only)."""
PRIVACY = ("Sharing sends this computer's passages (pieces of your documents' text), their vectors and "
           "picture thumbnails to that storage, where anyone who can read the bucket can read them. "
           "Files themselves stay on this computer.")


def computer_name() -> str:
    """How this computer is named to the others (the host name, without a domain)."""
    name = (socket.gethostname() or "").split(".")[0].strip()
    return name[:64] or "this computer"


@dataclasses.dataclass
class ShareConfig:
    uri: str
    part_id: str
    computer: str
    joined_at: float = 0.0

    @staticmethod
    def new(uri: str, computer: str | None = None) -> ShareConfig:
        return ShareConfig(uri=uri, part_id=uuid.uuid4().hex, computer=(computer or computer_name())[:64],
                           joined_at=time.time())


@dataclasses.dataclass
class PublishState:
    """What this computer's part on the bucket holds, as far as this computer knows."""

    generation: str = ""  # matches part.json's: else the part was lost and is published again whole
    rows: dict[str, str] = dataclasses.field(default_factory=dict)  # fid -> digest of the published file row
    thumbs: dict[str, str] = dataclasses.field(default_factory=dict)  # fid -> thumbnail name uploaded
    versions: dict[str, int] = dataclasses.field(default_factory=dict)  # local table -> version published
    last_ok: float = 0.0
    last_try: float = 0.0
    problem: str = ""  # why the last try failed ("" after a success)
    files: int = 0


def load_config(data_dir: Path) -> ShareConfig | None:
    data = read_json(Path(data_dir) / CONFIG_FILE)
    if not isinstance(data, dict):
        return None
    try:
        cfg = ShareConfig(uri=str(data["uri"]), part_id=str(data["part_id"]), computer=str(data["computer"]),
                          joined_at=float(data.get("joined_at", 0.0)))
    except (KeyError, TypeError, ValueError):
        return None
    if not cfg.uri.startswith("s3://") or not cfg.part_id.isalnum():
        return None
    return cfg


def save_config(data_dir: Path, cfg: ShareConfig) -> None:
    write_json_atomic(Path(data_dir) / CONFIG_FILE, dataclasses.asdict(cfg), indent=2)


def forget_config(data_dir: Path) -> None:
    for name in (CONFIG_FILE, STATE_FILE):
        try:
            os.unlink(Path(data_dir) / name)
        except FileNotFoundError:
            pass


def load_state(data_dir: Path) -> PublishState:
    data = read_json(Path(data_dir) / STATE_FILE)
    if not isinstance(data, dict):
        return PublishState()
    state = PublishState()
    for f in dataclasses.fields(PublishState):
        value: Any = data.get(f.name)
        default = getattr(state, f.name)
        if isinstance(default, dict) and isinstance(value, dict):
            setattr(state, f.name, {str(k): v for k, v in value.items()})
        elif isinstance(default, str) and isinstance(value, str):
            setattr(state, f.name, value)
        elif isinstance(default, (int, float)) and isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(state, f.name, type(default)(value))
    return state


def save_state(data_dir: Path, state: PublishState) -> None:
    write_json_atomic(Path(data_dir) / STATE_FILE, dataclasses.asdict(state))
