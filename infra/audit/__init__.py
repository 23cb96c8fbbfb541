"""Tamper evidence: the hash chain and its C core, verification, signed checkpoints and
evidence bundles."""
