"""The asynchronous client, :class:`AsyncClient`: the same surface as
:class:`~multimodel.Client`, awaited (asyncio or trio, through anyio).

Example::

    import multimodel as mm

    client = mm.AsyncClient(deployments=[
        mm.Deployment(model="gpt-4o-mini", provider="openai"),      # key from OPENAI_API_KEY
        mm.Deployment(model="gpt-4o-mini", provider="azure", provider_model="my-4o-mini",
                      base_url="https://my-resource.openai.azure.com"),
    ])
    response = await client.query("Explain quantum computing", max_tokens=200)
    print(response.text, response.deployment, response.usage)
"""

from ._client._async.client import AsyncClient

__all__ = ["AsyncClient"]
