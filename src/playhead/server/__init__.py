"""The HTTP/WebSocket server: the FastAPI app, its routes, and the parts a replica runs
(viewers, readiness, planning, exports), wired by `runtime`."""
