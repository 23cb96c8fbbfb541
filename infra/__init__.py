"""Adapters and the composition root: store, transcoder, configuration, CLI."""
