"""Sub-commands of the ``cgpredict`` CLI; each module exposes ``register(subparsers)``."""
