"""Everything PyAV: probe, ingest, frame-exact decode, fMP4/HLS segments, export writers."""
