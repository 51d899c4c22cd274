"""--web.config.file: real TLS on loopback, basic auth with bcrypt hashes, clear errors."""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import bcrypt
import pytest
import trustme
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter import statuspage
from exporter.config import ConfigError
from exporter.web import make_app
from exporter.webconfig import BasicAuth, WebConfig, load_web_config, middleware

PASSWORD = "correct horse battery staple"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def certs(ca: trustme.CA, tmp_path: Path) -> Path:
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(tmp_path / "server.crt")
    server.private_key_pem.write_to_path(tmp_path / "server.key")
    ca.cert_pem.write_to_path(tmp_path / "ca.crt")
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


async def serve(config: WebConfig) -> tuple[web.AppRunner, int]:
    app = make_app(
        CollectorRegistry(),
        ready=lambda: True,
        middlewares=[middleware(config)],
        landing_page=False,
    )
    statuspage.add_routes(app, dict, telemetry_path="/metrics", version="test")
    runner = web.AppRunner(app)
    await runner.setup()
    context = config.tls.context() if config.tls else None
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    return runner, runner.addresses[0][1]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
async def tls_server(certs: Path, ca: trustme.CA) -> AsyncIterator[tuple[int, ssl.SSLContext]]:
    config = load_web_config(
        write(
            certs / "web.yml",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            f"basic_auth_users:\n  prometheus: '{HASH}'\n"
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
            "    Content-Security-Policy: default-src 'none'\n",
        )
    )
    runner, port = await serve(config)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    try:
        yield port, client_context
    finally:
        await runner.cleanup()


async def test_tls_and_basic_auth(tls_server: tuple[int, ssl.SSLContext]) -> None:
    port, context = tls_server
    url = f"https://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, ssl=context, headers=basic("prometheus", PASSWORD)) as r:
            assert r.status == 200
            assert r.headers["X-Frame-Options"] == "deny"
            assert r.headers["Content-Security-Policy"] == "default-src 'none'"
        # The status page keeps the policy that lets its inline code run; other headers apply.
        page = f"https://127.0.0.1:{port}/"
        async with session.get(page, ssl=context, headers=basic("prometheus", PASSWORD)) as r:
            assert r.status == 200 and r.headers["X-Frame-Options"] == "deny"
            assert "script-src 'sha256-" in r.headers["Content-Security-Policy"]
        for headers in (
            {},
            basic("prometheus", "wrong"),
            basic("nobody", PASSWORD),
            {"Authorization": "Bearer abc"},
            {"Authorization": "Basic !!!notbase64"},
        ):
            async with session.get(url, ssl=context, headers=headers) as r:
                assert r.status == 401
                assert "Basic" in r.headers["WWW-Authenticate"]
        # Plain HTTP to the TLS port does not get metrics.
        with pytest.raises(aiohttp.ClientError):
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                await r.read()
                assert r.status != 200


async def test_health_checks_need_no_password(tls_server: tuple[int, ssl.SSLContext]) -> None:
    port, context = tls_server
    async with aiohttp.ClientSession() as session:
        for path in ("/-/healthy", "/-/ready"):
            async with session.get(f"https://127.0.0.1:{port}{path}", ssl=context) as r:
                assert r.status == 200
        async with session.get(f"https://127.0.0.1:{port}/", ssl=context) as r:
            assert r.status == 401


async def test_unknown_users_cost_a_real_bcrypt_check() -> None:
    auth = BasicAuth({"prometheus": HASH})
    # The dummy is a valid hash at the configured cost (4 here), so checking it does the same
    # work as checking a real user's hash, instead of failing fast on a malformed salt.
    assert auth._dummy.startswith(b"$2b$04$")
    assert bcrypt.checkpw(b"anything", auth._dummy) is False
    header = "Basic " + base64.b64encode(f"nobody:{PASSWORD}".encode()).decode()
    assert await auth.check(header) is False
    good = "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    assert await auth.check(good) is True
    assert await auth.check(good) is True  # served from the cache the second time


async def test_untrusted_certificate_is_refused(tls_server: tuple[int, ssl.SSLContext]) -> None:
    port, _ = tls_server
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"https://127.0.0.1:{port}/metrics")


async def test_client_certificates_when_required(certs: Path, ca: trustme.CA) -> None:
    config = load_web_config(
        write(
            certs / "web.yml",
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n",
        )
    )
    runner, port = await serve(config)
    try:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"https://127.0.0.1:{port}/-/healthy", ssl=context) as r:
                    await r.read()
            ca.issue_cert("scraper@example.test").configure_cert(context)
            async with session.get(f"https://127.0.0.1:{port}/-/healthy", ssl=context) as r:
                assert r.status == 200
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tls_server_config:\n  key_file: server.key\n", ["tls_server_config.cert_file: required"]),
        (
            "tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n",
            ["tls_server_config.cert_file: no such file: nope.crt"],
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  min_version: SSL3\n",
            ["tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13"],
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  client_auth_type: RequireAndVerifyClientCert\n",
            [
                "tls_server_config.client_ca_file: required with client_auth_type "
                "RequireAndVerifyClientCert"
            ],
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            "  client_ca_file: ca.crt\n",
            [
                "tls_server_config.client_auth_type: must require or verify client certificates "
                "when client_ca_file is set (VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
            ],
        ),
        (
            "basic_auth_users:\n  alice: plaintext-password\n",
            ["basic_auth_users.alice: must be a bcrypt hash ($2a$, $2b$ or $2y$)"],
        ),
        ("tls_config: {}\n", ["tls_config: unknown key"]),
        (
            "http_server_config:\n  http2: false\n",
            ["http_server_config.http2: not supported by this exporter"],
        ),
    ],
)
def test_bad_web_config_is_reported_by_key(certs: Path, text: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_web_config(write(certs / "web.yml", text))
    assert caught.value.problems == expected
    assert "plaintext-password" not in str(caught.value)


def test_repr_never_shows_hashes(certs: Path) -> None:
    config = load_web_config(write(certs / "web.yml", f"basic_auth_users:\n  bob: '{HASH}'\n"))
    assert HASH not in repr(config)
    assert "bob" in repr(config)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_web_config(tmp_path / "web.yml")
    (line,) = caught.value.problems
    assert "web.yml: cannot read" in line
