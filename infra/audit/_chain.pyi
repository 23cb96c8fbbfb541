# The C core of infra/audit/chain.py (infra/audit/_chain.c): its signature, for type checkers.

def link_many(items: list[tuple[bytes, int, int, bytes, int, bytes, bytes]], /) -> list[bytes]:
    """Links of the chain for (prev, pos, prev_pos, id, version, topic, state) tuples."""
