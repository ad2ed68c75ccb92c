"""Where a shared library lives, how to reach it, and what to say when it cannot be reached.

Credentials, region and endpoint come only from the standard AWS chain, read at run
time: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``,
``AWS_PROFILE`` and ``~/.aws/credentials`` / ``~/.aws/config``, ``AWS_REGION``, and the
endpoint from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``. Lodestar never writes
them anywhere (settings, logs, the bucket): `Bucket` passes them to boto3 and LanceDB
in memory only.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from typing import Any

from indexer.errors import UserError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 10.0
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


class ShareError(UserError):
    """The shared library's storage cannot be used; ``str(exc)`` is one line saying what to do."""


@dataclasses.dataclass(frozen=True)
class ShareTarget:
    """``s3://BUCKET/PREFIX``: the root of one shared library."""

    bucket: str
    prefix: str  # no leading or trailing slash; may be ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, *parts: str) -> str:
        """An object key below the library's root."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def part_key(self, part_id: str, *rest: str) -> str:
        return self.key("parts", part_id, *rest)

    def part_db_uri(self, part_id: str) -> str:
        return f"s3://{self.bucket}/{self.part_key(part_id, 'index.lance')}"


def parse_uri(text: str) -> ShareTarget:
    """``s3://BUCKET/PREFIX`` → ShareTarget; anything else raises ShareError with the form wanted."""
    raw = (text or "").strip()
    m = re.fullmatch(r"s3://([^/]+)/?(.*)", raw)
    if not m:
        raise ShareError(f"a shared library is an S3 address like s3://BUCKET/PREFIX, not {raw[:80]!r}")
    bucket, prefix = m.group(1), m.group(2).strip("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ShareError(f"{bucket[:80]!r} is not a bucket name (3-63 lower-case letters, digits, dots, hyphens)")
    if any(seg in ("", ".", "..") for seg in prefix.split("/")) and prefix:
        raise ShareError(f"the prefix {prefix[:80]!r} has an empty, '.' or '..' part")
    if any(ord(c) < 32 or c in "\\{}^%`[]\"<>~#|" for c in prefix):
        raise ShareError("the prefix may hold letters, digits and - _ . / only")
    return ShareTarget(bucket, prefix)


def endpoint_url() -> str | None:
    """The S3 endpoint from the standard variables (or the AWS config file), None for AWS itself."""
    for var in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    try:
        import botocore.session

        value = botocore.session.get_session().get_config_variable("endpoint_url")
    except Exception as exc:  # noqa: BLE001 - a broken config file: no endpoint from it
        log.debug("no endpoint from the AWS config: %s", exc)
        return None
    return str(value) if value else None


class Bucket:
    """One shared library's storage: boto3 for small objects, LanceDB options for the tables."""

    def __init__(self, target: ShareTarget, *, connect_timeout: float = CONNECT_TIMEOUT_S,
                 read_timeout: float = READ_TIMEOUT_S) -> None:
        import boto3
        import botocore.config
        import botocore.session

        self.target = target
        self.endpoint = endpoint_url()
        session = botocore.session.get_session()  # AWS_PROFILE, env vars, ~/.aws files
        creds = session.get_credentials()
        if creds is None:
            raise ShareError("no credentials for the storage: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                             "(or AWS_PROFILE, or ~/.aws/credentials)")
        self._creds = creds.get_frozen_credentials()
        self.region = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                       or session.get_config_variable("region") or "us-east-1")
        config = botocore.config.Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                                        retries={"max_attempts": 2, "mode": "standard"},
                                        s3={"addressing_style": "path"} if self.endpoint else None)
        self.client: Any = boto3.session.Session(botocore_session=session).client(
            "s3", endpoint_url=self.endpoint, region_name=self.region, config=config)
        self._timeouts = (connect_timeout, read_timeout)

    def where(self) -> str:
        """How the storage is named in messages (the endpoint when it is not AWS)."""
        return f"{self.target.uri} at {self.endpoint}" if self.endpoint else self.target.uri

    def storage_options(self) -> dict[str, str]:
        """LanceDB/object_store options: the same credentials, region and endpoint, short timeouts."""
        connect, read = self._timeouts
        opts = {
            "aws_access_key_id": self._creds.access_key,
            "aws_secret_access_key": self._creds.secret_key,
            "aws_region": self.region,
            "connect_timeout": f"{max(1, int(connect))}s",
            "timeout": f"{max(1, int(read))}s",
            "client_max_retries": "1",
            "client_retry_timeout": f"{max(1, int(read))}",
        }
        if self._creds.token:
            opts["aws_session_token"] = self._creds.token
        if self.endpoint:
            opts["aws_endpoint"] = self.endpoint
            opts["aws_virtual_hosted_style_request"] = "false"
            if self.endpoint.startswith("http://"):
                opts["allow_http"] = "true"
        return opts

    def connect(self, part_id: str, *, read_consistency_s: float = 0.0) -> Any:
        """A LanceDB connection to one part's database."""
        from datetime import timedelta

        import lancedb

        return lancedb.connect(self.target.part_db_uri(part_id), storage_options=self.storage_options(),
                               read_consistency_interval=timedelta(seconds=read_consistency_s))

    # ----------------------------------------------------------- small objects
    def check(self) -> None:
        """Raise ShareError (one line) unless the bucket can be listed with these credentials."""
        try:
            self.client.list_objects_v2(Bucket=self.target.bucket, Prefix=self.target.key("parts") + "/", MaxKeys=1)
        except Exception as exc:
            raise self.problem(exc) from exc

    def get_json(self, key: str) -> dict[str, Any] | None:
        """A JSON object stored at ``key``; None when there is none (or it is not a JSON object)."""
        try:
            body = self.client.get_object(Bucket=self.target.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self.problem(exc) from exc
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            log.warning("%s in %s is not JSON; ignored", key, self.target.uri)
            return None
        return data if isinstance(data, dict) else None

    def put_json(self, key: str, data: dict[str, Any]) -> None:
        self.put_bytes(key, json.dumps(data, indent=1, sort_keys=True).encode("utf-8"), "application/json")

    def put_bytes(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            self.client.put_object(Bucket=self.target.bucket, Key=key, Body=body, ContentType=content_type)
        except Exception as exc:
            raise self.problem(exc) from exc

    def download(self, key: str, dest: str) -> bool:
        """Copy an object to a local file (atomically); False when there is no such object."""
        tmp = f"{dest}.{os.getpid()}.part"
        try:
            self.client.download_file(self.target.bucket, key, tmp)
            os.replace(tmp, dest)
            return True
        except Exception as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self.problem(exc) from exc

    def list_part_ids(self) -> list[str]:
        """Every part's id (the folders under ``parts/``)."""
        out: list[str] = []
        token: str | None = None
        prefix = self.target.key("parts") + "/"
        try:
            while True:
                kwargs: dict[str, Any] = {"Bucket": self.target.bucket, "Prefix": prefix, "Delimiter": "/"}
                if token:
                    kwargs["ContinuationToken"] = token
                page = self.client.list_objects_v2(**kwargs)
                for cp in page.get("CommonPrefixes", []) or []:
                    name = str(cp.get("Prefix", ""))[len(prefix):].strip("/")
                    if re.fullmatch(r"[0-9a-f]{8,64}", name):
                        out.append(name)
                token = page.get("NextContinuationToken")
                if not token:
                    return out
        except Exception as exc:
            raise self.problem(exc) from exc

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (a folder: ends with '/'); how many were deleted."""
        if not prefix.endswith("/"):
            raise ValueError("delete_prefix wants a folder key ending in '/'")
        done = 0
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.target.bucket, Prefix=prefix):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", []) or []]
                for i in range(0, len(keys), 1000):
                    self.client.delete_objects(Bucket=self.target.bucket, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
                    done += len(keys[i:i + 1000])
        except Exception as exc:
            raise self.problem(exc) from exc
        return done

    def delete_keys(self, keys: list[str]) -> None:
        try:
            for i in range(0, len(keys), 1000):
                self.client.delete_objects(Bucket=self.target.bucket,
                                           Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
        except Exception as exc:
            raise self.problem(exc) from exc

    # ----------------------------------------------------------------- errors
    def problem(self, exc: BaseException) -> ShareError:
        """One line for a storage failure (credentials, bucket, endpoint), else the error's own words."""
        return ShareError(describe(exc, self.target, self.endpoint))


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def describe(exc: BaseException, target: ShareTarget, endpoint: str | None) -> str:
    """What went wrong with the storage, in one line with what to do."""
    if isinstance(exc, ShareError):
        return str(exc)
    code = _code(exc)
    where = endpoint or endpoint_url() or "AWS S3"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "ExpiredToken",
                "InvalidToken", "AuthorizationHeaderMalformed", "403", "AccessDenied", "Forbidden"):
        if code in ("AccessDenied", "403", "Forbidden"):
            return (f"the storage refused access to {target.uri}: check that your credentials "
                    "(AWS_ACCESS_KEY_ID / AWS_PROFILE) may read and write that bucket")
        return (f"the storage at {where} does not accept these credentials ({code}): check AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
    if code in ("NoSuchBucket",):
        return f"there is no bucket {target.bucket!r} at {where}: create it first, or check the name"
    name = type(exc).__name__
    text = str(exc)
    low = text.lower()
    unreachable = ("tcp connect error", "connectionrefused", "connection refused", "kind: connect", "kind: timeout",
                   "timed out", "dns error", "error sending request", "connection reset", "broken pipe")
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError") \
            or isinstance(exc, (ConnectionError, TimeoutError)) or any(w in low for w in unreachable):
        return f"cannot reach the storage at {where}: check the network (or AWS_ENDPOINT_URL) and try again"
    if name == "NoCredentialsError":
        return ("no credentials for the storage: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE, or ~/.aws/credentials)")
    if "NoSuchBucket" in text or "bucket does not exist" in low:
        return f"there is no bucket {target.bucket!r} at {where}: create it first, or check the name"
    if "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        return (f"the storage at {where} does not accept these credentials: check AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
    short = " ".join(text.split())[:200]
    return f"the shared library at {target.uri} cannot be used: {short or name}"
