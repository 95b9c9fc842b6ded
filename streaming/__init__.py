"""WebRTC streaming from the worker that owns a slot (arrives with the streaming issue)."""
