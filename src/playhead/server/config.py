"""Settings of one ``playhead serve`` process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from playhead.errors import UnsupportedError
from playhead.media.ingest import IngestOptions
from playhead.server.planning import PlanningConfig


@dataclass(frozen=True)
class ServeConfig:
    data_dir: Path  # local files: the store (embedded), mezzanine copies, uploads in progress
    workers: int = 2  # in-process workers; 0 for an API replica of a fleet
    policy: str = "deadline"
    ingest: IngestOptions = field(default_factory=IngestOptions)
    cache_bytes: int | None = 20 * 1024**3  # segment cache budget of a local store
    segment_wait_s: float = 20.0  # a request for a segment not yet rendered waits this long
    lease_s: float = 30.0
    inferred_session_ttl_s: float = 10.0
    batch_size: int | None = None  # None: what each effect prefers on this device
    # deadline policy: workers after the first only take playing work due within this long,
    # so a seek rarely waits for a whole far-ahead segment to finish
    headroom_s: float = 6.0
    redis: str | None = None  # redis://HOST:PORT/DB: the shared queue and board of a fleet
    store: str | None = None  # file:///path or s3://bucket/prefix (default: data_dir)
    queue_name: str = "segments"
    # the device classes of the fleet's workers (`playhead worker --device`), one queue each;
    # the first also runs exports. Embedded: this machine's device.
    device_classes: tuple[str, ...] = ("cpu",)
    max_attempts: int = 3
    retry_backoff_s: float = 0.5  # a failed attempt is retried after this, doubling each time
    # how often an expired lease is looked for (a Redis-wide rate limit; each look is cheap):
    # a killed worker's job runs again within its lease plus this
    stalled_check_s: float = 0.5
    sample: bool = False  # ingest the sample clip when the library is empty
    planning: PlanningConfig = field(default_factory=PlanningConfig)

    def check(self) -> None:
        """Refuse settings that cannot work together, before anything starts."""
        if self.redis is not None and self.store is None:
            raise UnsupportedError(
                "--redis shares the queue with other processes, so they need a store they all "
                "share too: add --store file:///shared/dir or --store s3://bucket/prefix"
            )
        if self.workers < 0:
            raise UnsupportedError(f"--workers must be 0 or more, got {self.workers}")
