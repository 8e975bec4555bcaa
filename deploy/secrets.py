"""Generate the secrets a single-machine deployment (compose, systemd) needs, outside git.

Why a command: the rendered files only *name* secrets; somebody has to make strong ones, with
0600 permissions, and never overwrite a live one by accident. ``lienthong deploy secrets``
creates what is missing (SCRAM passwords per broker user, the KRaft cluster id, a private CA
and the broker's TLS certificate) and replaces only what ``--rotate`` names. Secrets of
outside systems (portal token, postal keys, gateway clients) come from their owners and are
only listed as missing. On Kubernetes, Strimzi's user and cluster operators do this instead.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lienthong.deploy.catalogue import Components
from lienthong.deploy.render import CONTROLLER_USER, kafka_users, password_secret

PRIVATE = 0o600
PASSWORD_VAR = "LIENTHONG_KAFKA__SASL_PASSWORD"
TLS_FILES = ("kafka-ca.pem", "kafka-ca.key", "kafka-broker.pem")


@dataclass
class SecretsReport:
    """What one run did, by file name (never the values)."""

    created: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    missing_external: list[str] = field(default_factory=list)


def _write_private(path: Path, data: bytes) -> None:
    """Write with 0600 from the first byte (no window where the file is world-readable)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, PRIVATE)
    os.replace(tmp, path)


def _put_env(path: Path, var: str, value: str, report: SecretsReport) -> None:
    """Set one VAR=value line of an env file, keeping the operator's other lines."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    line = f"{var}={value}"
    kept = [old for old in lines if not old.startswith(f"{var}=")]
    if line in lines:
        report.kept.append(path.name)
        return
    (report.rotated if len(kept) < len(lines) else report.created).append(path.name)
    _write_private(path, ("\n".join([line, *kept]) + "\n").encode())


def new_password() -> bytes:
    """256 random bits as hex: no character needs quoting in SCRAM, shell or env files."""
    return secrets.token_hex(32).encode()


def new_cluster_id() -> bytes:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lienthong"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def new_tls(hosts: Iterable[str], now: dt.datetime | None = None) -> dict[str, bytes]:
    """A private CA and the broker's key + certificate (PEM, PKCS#8 key, for ssl.keystore PEM)."""
    now = now or dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("lienthong Kafka CA"))
        .issuer_name(_name("lienthong Kafka CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kafka"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    plain = serialization.NoEncryption()
    return {
        "kafka-ca.pem": ca_cert.public_bytes(pem),
        "kafka-ca.key": ca_key.private_bytes(pem, pkcs8, plain),
        # Kafka's PEM keystore: the private key, then the certificate chain.
        "kafka-broker.pem": key.private_bytes(pem, pkcs8, plain)
        + cert.public_bytes(pem)
        + ca_cert.public_bytes(pem),
    }


def generate(
    components: Components,
    out: Path,
    *,
    env_files: bool,
    hosts: Iterable[str] = ("kafka", "localhost"),
    rotate: Iterable[str] = (),
) -> SecretsReport:
    """Create missing secrets in ``out`` (0600); replace those named in ``rotate``.

    ``rotate`` takes broker user names (a new SCRAM password), ``controller`` (the broker's
    login to its controller listener) or ``tls`` (new CA and broker certificate); the cluster
    id is never replaced, a formatted broker keeps it.
    ``env_files`` (systemd) also writes ``<user>.env`` with LIENTHONG_KAFKA__SASL_PASSWORD.
    """
    users = kafka_users(components)
    wanted = set(rotate)
    unknown = sorted(wanted - {*users, CONTROLLER_USER, "tls"})
    if unknown:
        raise ValueError(
            f"cannot rotate {', '.join(unknown)}: name a broker user ({', '.join(users)}), "
            f"{CONTROLLER_USER} or tls"
        )
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    report = SecretsReport()

    def put(name: str, data: bytes, rotating: bool) -> None:
        path = out / name
        if path.exists() and not rotating:
            report.kept.append(name)
            return
        (report.rotated if path.exists() else report.created).append(name)
        _write_private(path, data)

    for user in users:
        name = password_secret(user)
        rotating = user in wanted
        put(name, new_password(), rotating)
        if env_files:
            _put_env(out / f"{user}.env", PASSWORD_VAR, (out / name).read_text(), report)
    # The broker's login to its own controller listener (not a SCRAM user).
    put(password_secret(CONTROLLER_USER), new_password(), CONTROLLER_USER in wanted)
    put("kafka-cluster-id", new_cluster_id(), False)
    tls_present = all((out / name).exists() for name in TLS_FILES)
    if not tls_present or "tls" in wanted:
        for name, data in new_tls(hosts).items():
            put(name, data, True)
    else:
        report.kept += list(TLS_FILES)
    for component in components.component:
        for ref in component.secret:
            if env_files and not ref.file:
                env_file = out / f"{component.name}.env"
                lines = env_file.read_text().splitlines() if env_file.exists() else []
                if not any(line.startswith(f"{ref.env}=") for line in lines):
                    report.missing_external.append(f"{env_file.name}: add {ref.env}=…")
            elif not (out / ref.name).exists():
                report.missing_external.append(f"{ref.name} ({component.name}: {ref.env})")
    return report
