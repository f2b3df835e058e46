"""What a client defers until it is needed, and that the deferred part works on first use.

Building a client loads neither the CA bundle (a pool loads it at its first ``https``
connection) nor OpenTelemetry (loaded when the application has loaded it, or names a provider
in the environment). Each check runs in a fresh interpreter: both are once per process.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from multimodel.testing import Behavior, MockDeployment, MockProviderServer

# Counts the CA bundle loads (a stdlib spy, as test_package's import check spies on open()).
_SPY = """
import ssl, sys
loads = []
_real = ssl.SSLContext.load_verify_locations
def _spy(self, *a, **k):
    loads.append(a or k)
    return _real(self, *a, **k)
ssl.SSLContext.load_verify_locations = _spy
"""

_SYNC = """
import concurrent.futures
import multimodel as mm
client = mm.Client(deployments=[
    mm.Deployment(model="m", provider="openai", api_key="sk-test", base_url=URL),
    mm.Deployment(model="m", provider="openai", api_key="sk-test", base_url=URL, name="b"),
])
assert loads == [], loads
assert "opentelemetry" not in sys.modules
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    texts = list(pool.map(lambda _: client.query("hi", model="m").text, range(16)))
assert texts == ["hello"] * 16, texts
client.close()
print(len(loads))
"""

_ASYNC = """
import anyio
import multimodel as mm
async def main() -> None:
    client = mm.AsyncClient(deployments=[
        mm.Deployment(model="m", provider="openai", api_key="sk-test", base_url=URL),
    ])
    assert loads == [], loads
    texts = []
    async def one() -> None:
        texts.append((await client.query("hi", model="m")).text)
    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(one)
    assert texts == ["hello"] * 8, texts
    await client.aclose()
anyio.run(main, backend=BACKEND)
print(len(loads))
"""


def _certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files)."""
    pytest.importorskip("cryptography", reason="the crypto extra makes the test certificate")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    cert_file, key_file = _certificate(tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    deployments = {"tls": MockDeployment(format="openai", behavior=Behavior(text="hello"))}
    with MockProviderServer(deployments, tls=context) as server:
        yield server.base_url("tls"), cert_file


def _run(code: str, url: str, *, env: dict[str, str] | None = None, **names: str) -> str:
    program = _SPY + f"URL = {url!r}\n" + "".join(f"{k} = {v!r}\n" for k, v in names.items())
    result = subprocess.run(
        [sys.executable, "-c", program + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_sync_client_loads_the_ca_bundle_once_at_its_first_https_request_from_threads(
    tls_server: tuple[str, Path],
) -> None:
    url, cert_file = tls_server
    # 16 calls from 8 threads at once, the first ones racing to make the context: one load.
    assert _run(_SYNC, url, env={"SSL_CERT_FILE": str(cert_file)}) == "1"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_client_loads_the_ca_bundle_once_at_its_first_https_request(
    tls_server: tuple[str, Path], backend: str
) -> None:
    url, cert_file = tls_server
    assert _run(_ASYNC, url, env={"SSL_CERT_FILE": str(cert_file)}, BACKEND=backend) == "1"


def test_an_https_server_the_default_context_does_not_trust_is_refused(
    tls_server: tuple[str, Path],
) -> None:
    # The lazily made context verifies: without SSL_CERT_FILE the self-signed server fails.
    url, _ = tls_server
    code = """
    import multimodel as mm
    from multimodel.errors import ProviderConnectionError
    client = mm.Client(deployments=[
        mm.Deployment(model="m", provider="openai", api_key="sk-test", base_url=URL),
    ], max_retries=0)
    try:
        client.query("hi", model="m")
    except ProviderConnectionError as exc:
        print("refused", "CERTIFICATE_VERIFY_FAILED" in repr(exc.__cause__), len(loads))
    """
    env = {"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""}
    assert _run(code, url, env=env) == "refused True 1"


def test_a_plain_http_fleet_never_loads_the_ca_bundle() -> None:
    deployments = {"plain": MockDeployment(format="openai", behavior=Behavior(text="hello"))}
    with MockProviderServer(deployments) as server:
        code = """
        import multimodel as mm
        client = mm.Client(deployments=[
            mm.Deployment(model="m", provider="openai", api_key="sk-test", base_url=URL),
        ])
        assert client.query("hi", model="m").text == "hello"
        print(len(loads))
        """
        assert _run(code, server.base_url("plain")) == "0"


_LATE_SDK = """
import time
import multimodel as mm
client = mm.Client(deployments=[
    mm.Deployment(model="m", provider="openai", api_key="sk-test", base_url=URL),
])
assert client.query("hi", model="m").text == "hello"
assert "opentelemetry" not in sys.modules  # no provider can be set: the API is not needed
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
time.sleep(1.1)  # the no-op globals are looked at again at most once a second
assert client.query("hi", model="m").text == "hello"
names = [m.name for rm in reader.get_metrics_data().resource_metrics
         for sm in rm.scope_metrics for m in sm.metrics]
print(sorted(s.name for s in exporter.get_finished_spans()), "ai.multimodel.requests" in names)
"""


def test_an_sdk_installed_after_the_first_call_is_picked_up_without_the_api_preloaded() -> None:
    pytest.importorskip("opentelemetry.sdk", reason="the SDK records what the client emits")
    deployments = {"plain": MockDeployment(format="openai", behavior=Behavior(text="hello"))}
    with MockProviderServer(deployments) as server:
        out = _run(_LATE_SDK, server.base_url("plain"))
    assert out == "['chat m', 'chat m'] True"


def test_a_provider_named_in_the_environment_is_loaded() -> None:
    # OTEL_PYTHON_TRACER_PROVIDER names a provider the API loads on its first lookup: the
    # client must look (and so import the API) even though the application never did.
    pytest.importorskip("opentelemetry.sdk", reason="the SDK's provider is the one named")
    deployments = {"plain": MockDeployment(format="openai", behavior=Behavior(text="hello"))}
    code = """
    import multimodel as mm
    client = mm.Client(deployments=[
        mm.Deployment(model="m", provider="openai", api_key="sk-test", base_url=URL),
    ])
    assert client.query("hi", model="m").text == "hello"
    from opentelemetry import trace
    print(type(trace.get_tracer_provider()).__name__, client.telemetry.tracing())
    """
    with MockProviderServer(deployments) as server:
        env = {"OTEL_PYTHON_TRACER_PROVIDER": "sdk_tracer_provider"}
        out = _run(code, server.base_url("plain"), env=env)
    assert out == "TracerProvider True"


_UNUSED_PARTS = """
import concurrent.futures
import multimodel as mm
client = mm.Client(deployments=[
    mm.Deployment(model="m", provider="openai", api_key="sk-test", base_url=URL),
])
assert client.query("hi", model="m").text == "hello"
# Not needed to build a client and send a query: loaded by their first use.
unused = ["multimodel.cache", "cachetools", "multimodel.security.policy",
          "multimodel.tracking.snapshot", "multimodel._client.openai_shapes", "opentelemetry",
          "multimodel.resilience.budget", "multimodel.resilience.hedge",
          "multimodel.providers._response_format", "multimodel.providers._schema"]
print([name for name in unused if name in sys.modules])
def first_use(_: int) -> tuple[str, tuple[str, ...]]:
    stats = client.stats()
    return type(stats).__name__, tuple(m.id for m in client.models.list())
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    seen = set(pool.map(first_use, range(8)))
print(seen, client.stats().deployments["openai/m"].requests)
"""


def test_a_client_loads_the_parts_it_does_not_use_on_first_use_from_threads() -> None:
    deployments = {"plain": MockDeployment(format="openai", behavior=Behavior(text="hello"))}
    with MockProviderServer(deployments) as server:
        out = _run(_UNUSED_PARTS, server.base_url("plain"))
    assert out.splitlines() == ["[]", "{('StatsSnapshot', ('m',))} 1"]


_STREAMING = (
    "multimodel._client._stream_core",
    "multimodel._client._sync.stream",
    "multimodel.providers._openai_stream",
    "multimodel.providers._shape",
    "multimodel.providers._stream",
    "multimodel.providers.sse",
)

_QUERY_THEN_STREAM = """
import multimodel as mm
client = mm.Client(deployments=[
    mm.Deployment(model="m", provider="openai", api_key="sk-test", base_url=URL),
])
assert client.query("hi", model="m").text == "hello"
streaming = STREAMING.split()
print([name for name in streaming if name in sys.modules])
# the first stream loads them, and so does the first stream of a with_options clone
with client.with_options(max_retries=0).stream("hi", model="m") as s:
    text = "".join(chunk.text for chunk in s)
with client.stream("hi", model="m") as s:
    print(text, "".join(chunk.text for chunk in s), s.response.usage.output_tokens > 0)
print([name for name in streaming if name not in sys.modules])
"""


def test_a_plain_query_loads_no_streaming_module_the_first_stream_does() -> None:
    # The streaming modules are a sizeable share of a query's memory (issue #18): they load
    # with the first stream, and a client that only queries never loads them.
    deployments = {"plain": MockDeployment(format="openai", behavior=Behavior(text="hello"))}
    with MockProviderServer(deployments) as server:
        out = _run(_QUERY_THEN_STREAM, server.base_url("plain"), STREAMING=" ".join(_STREAMING))
    assert out.splitlines() == ["[]", "hello hello True", "[]"]


def test_importing_the_clients_builds_no_pydantic_schema() -> None:
    # Defining a model defers its schema; validating one builds it (and pydantic's plugin
    # discovery with it). Touching the clients validates nothing: the first client does.
    code = """
    import multimodel
    multimodel.Client, multimodel.AsyncClient
    from pydantic import BaseModel
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    built = [c.__name__ for c in subclasses(BaseModel)
             if c.__module__.startswith("multimodel") and c.__pydantic_complete__]
    from multimodel.providers.base import NO_USAGE
    from multimodel.types import Usage
    same = NO_USAGE == Usage(estimated=True) and NO_USAGE.model_fields_set == {"estimated"}
    print(built, same)
    """
    assert _run(code, "") == "[] True"


def test_a_plain_query_builds_the_schemas_of_the_configuration_it_validates_only() -> None:
    # A schema is ~0.1-0.3 MiB (issue #18). A client validates its configuration; the bundled
    # catalog, the request and the answer are built without validation, so their models keep
    # their schemas deferred.
    code = """
    import multimodel as mm
    from pydantic import BaseModel
    client = mm.Client(deployments=[
        mm.Deployment(model="gpt-4o-mini", provider="openai", api_key="sk-test", base_url=URL),
    ])
    answer = client.query("hi", max_tokens=5)
    assert answer.text == "hello" and answer.cost is not None and answer.cost > 0, answer
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    print(sorted(c.__name__ for c in subclasses(BaseModel)
                 if c.__module__.startswith("multimodel") and c.__pydantic_complete__))
    """
    deployments = {"plain": MockDeployment(format="openai", behavior=Behavior(text="hello"))}
    with MockProviderServer(deployments) as server:
        out = _run(code, server.base_url("plain"))
    assert out == "['ClientConfig', 'Deployment']"
