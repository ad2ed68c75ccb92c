"""The shared library's address and its one-line problems (issue 19); no server needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.shared.config import PublishState, ShareConfig, load_config, load_state, save_config, save_state
from indexer.shared.target import ShareError, ShareTarget, describe, parse_uri


@pytest.mark.parametrize(("text", "bucket", "prefix"), [
    ("s3://family/lodestar", "family", "lodestar"),
    ("s3://family/lodestar/", "family", "lodestar"),
    ("s3://my-bucket.2026/a/b", "my-bucket.2026", "a/b"),
    ("  s3://family  ", "family", ""),
])
def test_addresses_that_name_a_bucket_and_prefix(text: str, bucket: str, prefix: str) -> None:
    target = parse_uri(text)
    assert (target.bucket, target.prefix) == (bucket, prefix)
    assert target.part_db_uri("ab12cd34") == f"s3://{bucket}/{prefix + '/' if prefix else ''}parts/ab12cd34/index.lance"


@pytest.mark.parametrize("text", ["", "family/lodestar", "https://x/y", "s3://", "s3://UPPER/x", "s3://a/../b",
                                  "s3://ok-bucket/a//b", "s3://ok-bucket/a\nb", "s3://x/y"])
def test_other_addresses_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(ShareError) as info:
        parse_uri(text)
    assert "\n" not in str(info.value)


class _ClientError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(f"An error occurred ({code})")
        self.response = {"Error": {"Code": code}}


def test_storage_failures_read_as_what_to_do() -> None:
    t = ShareTarget("family", "lib")
    ep = "http://nas:9000"
    assert describe(_ClientError("InvalidAccessKeyId"), t, ep).startswith(
        "the storage at http://nas:9000 does not accept these credentials (InvalidAccessKeyId)")
    assert describe(_ClientError("AccessDenied"), t, ep).startswith("the storage refused access to s3://family/lib")
    assert describe(_ClientError("NoSuchBucket"), t, ep) == (
        "there is no bucket 'family' at http://nas:9000: create it first, or check the name")
    lance = ValueError('Failed to connect: ConnectError("tcp connect error", 127.0.0.1:1, Os { code: 111, '
                       'kind: ConnectionRefused })')
    assert describe(lance, t, ep).startswith("cannot reach the storage at http://nas:9000")
    assert describe(ConnectionResetError("reset"), t, ep).startswith("cannot reach the storage")
    odd = describe(RuntimeError("something\nelse   entirely"), t, ep)
    assert odd == "the shared library at s3://family/lib cannot be used: something else entirely"


def test_config_and_state_round_trip_and_damage_is_no_config(tmp_path: Path) -> None:
    cfg = ShareConfig.new("s3://family/lib", "desk")
    save_config(tmp_path, cfg)
    assert load_config(tmp_path) == cfg
    assert (tmp_path / "shared.json").stat().st_mode & 0o077 == 0
    state = PublishState(generation="g", rows={"ab": "cd"}, versions={"files": 3}, files=1, problem="x")
    save_state(tmp_path, state)
    assert load_state(tmp_path) == state
    (tmp_path / "shared.json").write_text('{"uri": "https://x", "part_id": "p", "computer": "c"}')
    assert load_config(tmp_path) is None
    (tmp_path / "shared-state.json").write_text('{"rows": 5, "files": "many"}')
    assert load_state(tmp_path) == PublishState()
