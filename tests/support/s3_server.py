"""A real S3 server for tests: moto's server mode on 127.0.0.1, in this process (issue 19).

`s3_server(monkeypatch, tmp_path)` starts it on a free port, points the standard AWS
variables at it (dummy credentials, AWS_ENDPOINT_URL; no ~/.aws file is read) and makes
one bucket. `S3.stop()` / `S3.start()` take it away and bring it back with its buckets.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest

BUCKET = "family-library"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3:
    """moto's S3 server; stop() and start() keep its buckets (like a restart)."""

    def __init__(self, port: int) -> None:
        from moto.server import ThreadedMotoServer

        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self._cls = ThreadedMotoServer
        self.server: Any = None

    def start(self) -> None:
        self.server = self._cls(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def keys(self, prefix: str = "") -> list[str]:
        out: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out


def s3_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3:
    """Start the server and point the AWS variables at it; the caller stops it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's access log
    server = S3(free_port())
    server.start()
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    import urllib.request

    # moto keeps its buckets in this process: each test starts from an empty server.
    urllib.request.urlopen(urllib.request.Request(f"{server.endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    server.client().create_bucket(Bucket=BUCKET)
    return server
