"""`python -m sd ...`: one module per sub-command, each with `register(subparsers)`."""
