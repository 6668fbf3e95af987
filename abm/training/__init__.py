"""The training face: the market batched over many worlds (``docs/training-env.md``)."""
