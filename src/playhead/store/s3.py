"""A store in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, SeaweedFS), through obstore.

Keys live under an optional prefix, so stores with different prefixes share a bucket without
seeing each other's keys. Write-once is the server's own conditional write (``If-None-Match:
*``): an "already exists" answer means another writer of the same content-addressed key got
there first, which is success. Every S3 request is atomic, so readers see a whole value or none.

Large files go through in parts: `put_file` uploads a file over ``part_size`` as a multipart
upload read from disk part by part, and `get_file` and `stream` read ranges of ``part_size``
(each range pinned to the ETag of the first, so a value overwritten meanwhile is never spliced).
S3 has no conditional multipart upload, so a write-once `put_file` of a large file checks that
the key is absent first; two writers racing past that check both upload the same bytes (the
keys are content-addressed) and the last one completes. Incomplete multipart uploads left by a
crash are the bucket's to clean up: give it a lifecycle rule that aborts them after a day.

Errors: a missing key is None / False, never an exception. An endpoint that is down,
unreachable, failing (5xx) or refusing our credentials, or a bucket that does not exist, raises
`StoreUnavailable` naming the endpoint and bucket (never credentials), in bounded time: connect
timeout ``connect_timeout_s``, each request at most ``request_timeout_s``, and retries only
while ``retry_timeout_s`` has not passed since the first try. A dead endpoint fails in under a
second, an unreachable one in a few, a hung one in one request timeout. (A HEAD cannot tell a
missing bucket from a missing key, so `exists` says False there; `check` tells.)

Eviction: S3 cannot say cheaply how many bytes the segment units hold, so `size` is None and
nothing here evicts: cached segments expire by a bucket lifecycle rule on the ``cache/`` prefix
(`layout.py` keeps everything re-renderable there and nothing else). A rule expires objects by
age, not ready marker first, so a reader that finds a unit's file missing treats the segment as
not ready (the server does: it asks for the segment again).

The store is thread-safe: obstore's client is, and each call releases the GIL while it waits.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import obstore
import obstore.exceptions as obx
from obstore.store import S3Store as _ObstoreS3

from playhead.store.base import StoreUnavailable, check_key
from playhead.store.layout import ready_segment

if TYPE_CHECKING:
    from obstore import GetOptions, GetResult
    from obstore.store import S3Config

T = TypeVar("T")

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NAME_PART = re.compile(r"^[A-Za-z0-9._-]*$")
_DELETE_BATCH = 1000  # S3's DeleteObjects limit
_MB = 1 << 20


def check_bucket(bucket: str) -> str:
    """S3's bucket naming rules (3–63 of a-z 0-9 . -, starting and ending alphanumeric)."""
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"bad S3 bucket name {bucket!r}")
    return bucket


def _is_loopback(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env_endpoint(env: Mapping[str, str]) -> str | None:
    names = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")  # obstore's precedence
    return next((env[name] for name in names if env.get(name)), None)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class S3Store:
    """The `Store` interface on ``bucket``, under ``prefix`` (no prefix: the whole bucket).

    Arguments left None are taken from the environment by obstore (``AWS_ENDPOINT_URL``,
    ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_SESSION_TOKEN``, and the web-identity and container variables of AWS deployments).
    Plain http is allowed to a loopback endpoint, or anywhere with ``allow_http=True``.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        allow_http: bool | None = None,
        connect_timeout_s: float = 2.0,
        request_timeout_s: float = 30.0,
        max_retries: int = 3,
        retry_timeout_s: float = 5.0,
        part_size: int = 8 * _MB,
    ) -> None:
        self.bucket = check_bucket(bucket)
        prefix = prefix.strip("/")
        self.prefix = check_key(prefix) if prefix else ""
        if endpoint is None:
            endpoint = _env_endpoint(os.environ)  # obstore reads it too; we name it in errors
        if endpoint is not None:
            scheme = urlsplit(endpoint).scheme
            if scheme not in ("http", "https"):
                raise ValueError(f"S3 endpoint {endpoint!r} is not an http(s) URL")
            if allow_http is None:
                allow_http = _is_loopback(endpoint) or _truthy(os.environ.get("AWS_ALLOW_HTTP"))
            if scheme == "http" and not allow_http:
                raise ValueError(
                    f"S3 endpoint {endpoint!r} is plain http: allowed to loopback addresses, "
                    "elsewhere only with AWS_ALLOW_HTTP=true"
                )
        self.endpoint = endpoint or "AWS S3"  # for messages
        if part_size < 5 * _MB:
            raise ValueError("part_size must be at least 5 MiB (S3's smallest multipart part)")
        self.part_size = part_size
        config: S3Config = {}  # what is not given here obstore takes from the environment
        if endpoint is not None:
            config["endpoint"] = endpoint
        if region is not None:
            config["region"] = region
        if access_key_id is not None:
            config["access_key_id"] = access_key_id
        if secret_access_key is not None:
            config["secret_access_key"] = secret_access_key
        if session_token is not None:
            config["session_token"] = session_token
        self._s3 = _ObstoreS3(
            self.bucket,
            prefix=self.prefix or None,
            config=config,
            client_options={
                "allow_http": bool(allow_http),
                "connect_timeout": timedelta(seconds=connect_timeout_s),
                "timeout": timedelta(seconds=request_timeout_s),
            },
            retry_config={
                "max_retries": max_retries,
                "retry_timeout": timedelta(seconds=retry_timeout_s),
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=1),
                    "base": 2,
                },
            },
        )

    @classmethod
    def from_env(
        cls, bucket: str, prefix: str = "", environ: Mapping[str, str] | None = None
    ) -> S3Store:
        """A store configured by the standard AWS variables of ``environ`` (default: this
        process's), so one URL reaches AWS, MinIO, R2 or a local server."""
        env = os.environ if environ is None else environ
        endpoint = _env_endpoint(env)
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if endpoint is not None and not (key and secret):
            # off AWS there is no instance metadata to ask for credentials
            raise ValueError(
                f"S3 endpoint {endpoint} needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        return cls(
            bucket,
            prefix,
            endpoint=endpoint,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            access_key_id=key or None,
            secret_access_key=secret or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
            allow_http=_truthy(env.get("AWS_ALLOW_HTTP")) or None,
        )

    def __repr__(self) -> str:
        where = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        return f"S3Store(s3://{where} at {self.endpoint})"

    # ---- errors -----------------------------------------------------------------------------

    def _unavailable(self, op: str, key: str, e: Exception) -> StoreUnavailable:
        first = str(e).split("\n", 1)[0]
        refused = isinstance(e, obx.PermissionDeniedError | obx.UnauthenticatedError)
        refused |= re.search(r"status code: 40[13] ", first) is not None  # as listings say it
        if refused:
            reason = "credentials refused (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, policy?)"
        elif "NoSuchBucket" in str(e):
            reason = "the bucket does not exist"
        else:
            # obstore's first line says what failed and how often it was tried; the server's
            # XML body after it adds nothing we need
            reason = first.split(": <?xml", 1)[0][:300]
        return StoreUnavailable(
            f"S3 store unavailable (endpoint {self.endpoint}, bucket {self.bucket}): "
            f"{op} {key!r}: {reason}"
        )

    def _changed(self, op: str, key: str, what: str) -> StoreUnavailable:
        return StoreUnavailable(
            f"S3 store (endpoint {self.endpoint}, bucket {self.bucket}): {op} {key!r}: "
            f"{what}; read it again"
        )

    def _call(self, op: str, key: str, fn: Callable[[], T]) -> T:
        """Run one obstore call; what means "the store is unreachable" → StoreUnavailable.
        FileNotFoundError (a missing key) passes through, unless the bucket is what's missing."""
        try:
            return fn()
        except FileNotFoundError as e:
            if "NoSuchBucket" in str(e):
                raise self._unavailable(op, key, e) from None
            raise
        except (
            obx.GenericError,
            obx.PermissionDeniedError,
            obx.UnauthenticatedError,
            obx.JoinError,
        ) as e:
            raise self._unavailable(op, key, e) from None

    # ---- writing ----------------------------------------------------------------------------

    def put(self, key: str, data: bytes, overwrite: bool = False) -> None:
        check_key(key)
        if overwrite:
            self._call(
                "put",
                key,
                lambda: obstore.put(
                    self._s3, key, data, mode="overwrite", chunk_size=self.part_size
                ),
            )
        else:
            self._create(key, lambda: data)

    def _create(self, key: str, data: Callable[[], bytes]) -> None:
        """A write-once PUT: an existing value is kept, and that is success."""

        def attempt() -> bool:
            try:
                obstore.put(self._s3, key, data(), mode="create", use_multipart=False)
            except (obx.AlreadyExistsError, obx.PreconditionError):
                pass  # the same key, the same content: the first copy stays
            except obx.GenericError as e:
                # a conditional write racing another one may be refused (409) rather than lose
                # (412): try again, and the loser sees the winner's copy
                if " 409 " in str(e).split("\n", 1)[0]:
                    return False
                raise
            return True

        for _ in range(5):
            if self._call("put", key, attempt):
                return
        raise StoreUnavailable(
            f"S3 store (endpoint {self.endpoint}, bucket {self.bucket}): put {key!r}: "
            "concurrent conditional writes kept conflicting"
        )

    def put_file(self, key: str, path: Path, overwrite: bool = False) -> None:
        check_key(key)
        size = path.stat().st_size
        if not overwrite and size <= self.part_size:
            self._create(key, path.read_bytes)  # small: one conditional PUT
            return
        if not overwrite and self.exists(key):
            return  # write-once: S3 has no conditional multipart upload, so look first
        self._call(
            "put_file",
            key,
            lambda: obstore.put(  # multipart, read from disk a part at a time
                self._s3, key, path, mode="overwrite", chunk_size=self.part_size, max_concurrency=4
            ),
        )

    # ---- reading ----------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        check_key(key)
        try:
            return self._call("get", key, lambda: bytes(obstore.get(self._s3, key).bytes()))
        except FileNotFoundError:
            return None

    def _ranges(self, op: str, key: str, window: int) -> Iterator[memoryview] | None:
        """The value in ranges of ``window`` bytes, all of one version; None if absent. The
        first range is fetched now (so absence shows here), the rest as they are consumed."""

        def fetch(options: GetOptions) -> tuple[memoryview, int, str | None]:
            result: GetResult = obstore.get(self._s3, key, options=options)
            return memoryview(result.bytes()), result.meta["size"], result.meta["e_tag"]

        def fetch_first() -> tuple[memoryview, int, str | None]:
            try:
                return fetch({"range": (0, window)})
            except obx.GenericError as e:
                if " 416 " not in str(e).split("\n", 1)[0]:
                    raise
                return fetch({})  # an empty value has no first byte to range over

        try:
            first, size, etag = self._call(op, key, fetch_first)
        except FileNotFoundError:
            return None

        def rest() -> Iterator[memoryview]:
            yield first
            offset = len(first)
            while offset < size:
                options: GetOptions = {"range": (offset, min(offset + window, size))}
                if etag:
                    options["if_match"] = etag
                try:
                    part, _, _ = self._call(op, key, functools.partial(fetch, options))
                except (FileNotFoundError, obx.PreconditionError):
                    raise self._changed(op, key, "deleted or replaced while being read") from None
                if not part:
                    raise self._changed(op, key, "shorter than it said")
                yield part
                offset += len(part)

        return rest()

    def get_file(self, key: str, dest: Path) -> bool:
        check_key(key)
        ranges = self._ranges("get_file", key, self.part_size)
        if ranges is None:
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                for part in ranges:
                    f.write(part)
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return True

    def stream(self, key: str, chunk: int = 1 << 20) -> Iterator[bytes] | None:
        check_key(key)
        if chunk <= 0:
            raise ValueError("chunk must be positive")
        window = chunk * max(1, self.part_size // chunk)  # whole chunks per range
        ranges = self._ranges("stream", key, window)
        if ranges is None:
            return None

        def chunks() -> Iterator[bytes]:
            for part in ranges:
                for start in range(0, len(part), chunk):
                    yield bytes(part[start : start + chunk])

        return chunks()

    def local_path(self, key: str) -> Path | None:
        check_key(key)
        return None

    def exists(self, key: str) -> bool:
        check_key(key)
        try:
            self._call("exists", key, lambda: obstore.head(self._s3, key))
        except FileNotFoundError:
            return False
        return True

    # ---- deleting and listing ---------------------------------------------------------------

    def delete(self, key: str) -> None:
        check_key(key)
        with contextlib.suppress(FileNotFoundError):  # some servers say so; gone either way
            self._call("delete", key, lambda: obstore.delete(self._s3, key))

    def _delete(self, keys: list[str]) -> None:
        obstore.delete(self._s3, keys)  # DeleteObjects, up to 1000 keys a request

    def delete_prefix(self, prefix: str) -> int:
        doomed = list(self.keys(prefix))
        # ready markers first: a unit is never "ready" with its other files gone
        markers = [k for k in doomed if ready_segment(k) is not None]
        rest = [k for k in doomed if ready_segment(k) is None]
        for batch in (markers, rest):
            for start in range(0, len(batch), _DELETE_BATCH):
                part = batch[start : start + _DELETE_BATCH]
                with contextlib.suppress(FileNotFoundError):
                    self._call("delete_prefix", prefix, functools.partial(self._delete, part))
        return len(doomed)

    def keys(self, prefix: str = "") -> Iterator[str]:
        # obstore lists by whole path segments: list the directory part, then filter on the
        # partial name after it ("renders/a" matches "renders/a.json" and "renders/ab.json")
        directory, _, partial = prefix.rpartition("/")
        if directory:
            check_key(directory)
        if not _NAME_PART.match(partial):
            raise ValueError(f"bad store key prefix {prefix!r}")

        def listing() -> list[str]:
            found: list[str] = []
            for page in obstore.list(self._s3, prefix=directory or None, chunk_size=1000):
                found.extend(m["path"] for m in page if m["path"].startswith(prefix))
            return found

        return iter(sorted(self._call("keys", prefix, listing)))

    def size(self) -> int | None:
        return None  # see the module docstring: eviction on S3 is a lifecycle rule

    # ---- health -----------------------------------------------------------------------------

    def check(self) -> None:
        """Raise `StoreUnavailable` unless the bucket answers a listing with our credentials
        (for a clear error at startup rather than at the first request)."""

        def probe() -> None:
            for _ in obstore.list(self._s3, prefix=None, chunk_size=1):
                break

        try:
            self._call("check", "", probe)
        except FileNotFoundError as e:
            raise self._unavailable("check", "", e) from None
