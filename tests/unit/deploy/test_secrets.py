"""`lienthong deploy secrets`: strong, private, never overwritten unless rotated."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

from lienthong.cli.main import main
from lienthong.deploy.catalogue import load_components
from lienthong.deploy.render import kafka_users, password_secret
from lienthong.deploy.secrets import generate


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("secrets") / "secrets"
    generate(load_components(), out, env_files=True, hosts=["kafka", "10.0.0.5", "kafka.tinh"])
    return out


def test_every_user_gets_a_private_password_and_env_file(generated: Path) -> None:
    assert stat.S_IMODE(generated.stat().st_mode) == 0o700
    passwords = set()
    for user in kafka_users(load_components()):
        path = generated / password_secret(user)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        password = path.read_text()
        assert len(password) == 64 and "\n" not in password
        passwords.add(password)
        env = (generated / f"{user}.env").read_text()
        assert env == f"LIENTHONG_KAFKA__SASL_PASSWORD={password}\n"
    assert len(passwords) == len(kafka_users(load_components()))
    controller = (generated / password_secret("controller")).read_text()
    assert len(controller) == 64 and controller not in passwords
    for path in generated.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_broker_certificate_is_signed_by_the_ca_for_the_given_hosts(generated: Path) -> None:
    ca = x509.load_pem_x509_certificate((generated / "kafka-ca.pem").read_bytes())
    pem = (generated / "kafka-broker.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    leaf = x509.load_pem_x509_certificates(pem)[0]
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    ca.public_key().verify(  # type: ignore[call-arg]
        leaf.signature,
        leaf.tbs_certificate_bytes,
        padding.PKCS1v15(),
        leaf.signature_hash_algorithm,
    )
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["kafka", "kafka.tinh"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    assert b"BEGIN PRIVATE KEY" in pem  # PKCS#8, what Kafka's PEM keystore reads


def test_a_second_run_keeps_everything(generated: Path) -> None:
    before = {p.name: p.read_bytes() for p in generated.iterdir()}
    report = generate(load_components(), generated, env_files=True)
    assert report.created == [] and report.rotated == []
    assert {p.name: p.read_bytes() for p in generated.iterdir()} == before


def test_rotation_replaces_one_password_and_keeps_operator_lines(tmp_path: Path) -> None:
    out = tmp_path / "s"
    components = load_components()
    generate(components, out, env_files=True)
    env = out / "portal-connector.env"
    env.write_text(env.read_text() + "LIENTHONG_CONNECTORS__PORTAL__TOKEN=from-the-portal\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    report = generate(components, out, env_files=True, rotate=["portal-connector"])
    assert report.rotated == ["kafka-password-portal-connector", "portal-connector.env"]
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"kafka-password-portal-connector", "portal-connector.env"}
    lines = env.read_text().splitlines()
    new_password = (out / "kafka-password-portal-connector").read_text()
    assert lines == [
        f"LIENTHONG_KAFKA__SASL_PASSWORD={new_password}",
        "LIENTHONG_CONNECTORS__PORTAL__TOKEN=from-the-portal",
    ]
    assert not any("PORTAL__TOKEN" in item for item in report.missing_external)


def test_unknown_rotation_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["deploy", "secrets", "--target", "compose", "--out", str(tmp_path / "s"),
                 "--rotate", "nobody"])  # fmt: skip
    assert code == 2
    assert "cannot rotate nobody: name a broker user (admin, worker" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_compose_secrets_name_what_the_outside_systems_must_provide(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "s"
    assert main(["deploy", "secrets", "--target", "compose", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"provide (outside system's secret): {out}/portal-token" in printed
    assert not list(out.glob("*.env"))


def _handshake(generated: Path, server_hostname: str) -> str:
    """TLS as kafka-python and aiokafka do it (Python ssl, CA file, hostname checked)."""
    import socket
    import ssl
    import threading

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(generated / "kafka-broker.pem")  # key and chain in one PEM
    client_ctx = ssl.create_default_context(cafile=str(generated / "kafka-ca.pem"))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                version = tls.version() or ""
                tls.sendall(b"x")
        thread.join(timeout=10)
    return version


def test_a_client_trusting_the_ca_reaches_the_broker_by_its_names(generated: Path) -> None:
    assert _handshake(generated, "kafka.tinh").startswith("TLS")
    assert _handshake(generated, "kafka").startswith("TLS")


def test_a_name_missing_from_the_certificate_is_refused(generated: Path) -> None:
    import ssl

    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(generated, "other.host")
