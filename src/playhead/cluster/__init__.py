"""A real multi-process deployment on one machine: Redis, an S3 server, API replicas and
worker processes, for trying scale-out (``playhead cluster``) and for the fault tests."""
