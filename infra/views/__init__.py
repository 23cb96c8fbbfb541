"""Read views: the row codec (`codec`), what a view store is (`store`), one module per backend
with the same class shape (`sqlite`, `postgres`), and the in-process runner (`runner`)."""
