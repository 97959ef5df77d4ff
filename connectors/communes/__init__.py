"""The ``communes`` connector type: commune boundaries (INSEE code, name) as a reference."""
