"""multimodel's own transports: how an attempt's bytes reach a provider.

Everything here is I/O, and nothing here knows about routing:

- :mod:`.pool`: HTTP/1.1 connection pools (async and sync) that reuse a connection in O(1);
  the default for the httpx client a multimodel client creates for itself.
- :mod:`.aiohttp`: an httpx transport over one ``aiohttp.ClientSession``
  (``AsyncClient(transport="aiohttp")``, the ``multimodel[aiohttp]`` extra).
- :mod:`.timed`: the sync pool's network layer, which bounds every socket operation by the
  time left to the current attempt (how the sync client enforces a total ``timeout``).
- :mod:`.send`: sending a prepared request without httpx's per-request machinery.
- :mod:`.select`: limits, the shared TLS context, and which transport a client gets.
"""
