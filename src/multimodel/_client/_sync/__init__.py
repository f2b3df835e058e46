"""The sync client, generated from ``_async/`` (see ``.ci/unasync.py``)."""
