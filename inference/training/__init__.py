"""Record-and-train pipeline for Reverie's own world models (teacher game -> data -> AE -> DiT)."""
