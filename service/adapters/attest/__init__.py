"""The outside things of signed checkpoints: the Ed25519 key (``signing``), the checkpoint files (``files``)."""
