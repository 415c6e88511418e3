"""A tiny ledger package: the lock-order fingerprint of its inversion must not depend on where
the project lives, on line numbers, or on the Python version."""
