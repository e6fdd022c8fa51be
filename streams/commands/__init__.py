"""The `newsflow` command line and the operator tools behind it (top layer: may import every
layer below; nothing at run time imports it back)."""
