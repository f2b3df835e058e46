"""The synchronous client, :class:`Client`.

Example::

    import multimodel as mm

    client = mm.Client(deployments=[
        mm.Deployment(model="gpt-4o-mini", provider="openai"),      # key from OPENAI_API_KEY
        mm.Deployment(model="gpt-4o-mini", provider="azure", provider_model="my-4o-mini",
                      base_url="https://my-resource.openai.azure.com"),
    ])
    response = client.query("Explain quantum computing", max_tokens=200)
    print(response.text, response.deployment, response.usage)

The code is generated from the async client's (``multimodel/_client/_async/``).
"""

from ._client._sync.client import Client

__all__ = ["Client"]
