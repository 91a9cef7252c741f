"""The HTTP/WebSocket server: FastAPI app, engine (sessions, scheduler, queue, workers)."""
