"""Session management and WebSocket logic of the broadcast service.

Everything here ships in the Lambda package; keep imports light (botocore and PyJWT
are imported lazily by the modules that need them).
"""
