"""The clients: an I/O-free base, the async drivers (source) and the generated sync ones."""
