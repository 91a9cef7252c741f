"""HLS VOD playlists for fMP4 segments."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction


def vod_playlist(
    segment_frames: Sequence[int], fps: Fraction, init_uri: str = "init.mp4", uri: str = "{k}.m4s"
) -> str:
    """A version-7 VOD playlist whose ``EXTINF`` durations are exact (frames / fps).

    ``segment_frames`` lists the frame count of each segment; ``uri`` is formatted with ``k``.
    """
    durations = [Fraction(n) / fps for n in segment_frames]
    target = max(1, math.ceil(max(durations, default=Fraction(1))))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{init_uri}"',
    ]
    for k, d in enumerate(durations):
        lines.append(f"#EXTINF:{float(d):.6f},")
        lines.append(uri.format(k=k))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"
