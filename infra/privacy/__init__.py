"""Privacy: the key store, sealing of personal values, the sealed-envelope format."""
