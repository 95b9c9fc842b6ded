"""WebRTC streaming from the worker that owns a slot: peers, video tracks, input, signalling."""
