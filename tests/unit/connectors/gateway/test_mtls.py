"""mTLS over a real TLS connection: the client certificate's fingerprint names the agency."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import ipaddress
import json
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lienthong.connectors.gateway.app import ThreadedGateway
from tests.unit.connectors.gateway.support import (
    CENTER,
    KEYS,
    LAND_OFFICE,
    FakePublisher,
    make_gateway,
    make_settings,
    received_body,
)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, key, issuer, issuer_key, *, ca=False, eku=None, san=None):
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        )
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(path, cert, key):
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path.with_suffix(".pem"), path.with_suffix(".key")


@pytest.fixture
def pki(tmp_path):
    out = {}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("agency client CA", ca_key, "agency client CA", ca_key, ca=True)
    out["ca"] = _write(tmp_path / "ca", ca, ca_key)[0]
    key = ec.generate_private_key(ec.SECP256R1())
    server = _cert(
        "localhost",
        key,
        "agency client CA",
        ca_key,
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    out["server"] = _write(tmp_path / "server", server, key)
    for name in ("center", "stranger"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(name, key, "agency client CA", ca_key, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
        out[name] = _write(tmp_path / name, cert, key)
        out[name + "_sha"] = hashlib.sha256(
            cert.public_bytes(serialization.Encoding.DER)
        ).hexdigest()
    other_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    rogue = _cert("rogue", key, "other CA", other_key, eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    out["rogue"] = _write(tmp_path / "rogue", rogue, key)
    return out


def _post(gw, pki, client_cert, headers=None):
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    if client_cert:
        ctx.load_cert_chain(*map(str, pki[client_cert]))
    conn = http.client.HTTPSConnection("127.0.0.1", gw.server.port, context=ctx, timeout=10)
    try:
        conn.request(
            "POST",
            "/v1/events/dossier_received",
            body=json.dumps(received_body()),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), json.loads(r.read() or b"null")
    finally:
        conn.close()


def test_mtls_maps_the_client_certificate_to_its_agency(tmp_path, pki):
    settings = make_settings(
        tmp_path,
        certs={CENTER: pki["center_sha"]},
        tls_certfile=pki["server"][0],
        tls_keyfile=pki["server"][1],
        tls_client_cafile=pki["ca"],
    )
    publisher = FakePublisher()
    with ThreadedGateway(make_gateway(settings, publisher)) as gw:
        # the certificate alone authenticates: no API key
        status, _, body = _post(gw, pki, "center")
        assert status == 202, body
        assert publisher.events[0].envelope.producer_agency == CENTER
        # a cert plus the same agency's key is fine; another agency's key is not
        auth = {"Authorization": f"Bearer {KEYS[CENTER]}"}
        assert _post(gw, pki, "center", auth)[0] == 202
        auth = {"Authorization": f"Bearer {KEYS[LAND_OFFICE]}"}
        status, headers, problem = _post(gw, pki, "center", auth)
        assert status == 401 and "WWW-Authenticate" in headers
        # a valid cert of the CA that is not registered to any client
        status, _, problem = _post(gw, pki, "stranger", {"X-API-Key": KEYS[CENTER]})
        assert status == 401 and "not registered" in problem["detail"]
        # no client cert, or one from another CA: the TLS handshake fails
        for cert in (None, "rogue"):
            with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException, OSError)):
                _post(gw, pki, cert, {"X-API-Key": KEYS[CENTER]})
        assert len(publisher.events) == 2
