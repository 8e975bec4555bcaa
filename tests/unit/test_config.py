from pathlib import Path

import pytest

from lienthong.config import ConfigError, load_settings


def test_defaults_use_the_embedded_broker_on_loopback():
    settings = load_settings(environ={})
    assert settings.uses_embedded_broker
    assert settings.bootstrap_servers == "127.0.0.1:19092"


def test_bootstrap_env_selects_an_existing_cluster():
    settings = load_settings(environ={"LIENTHONG_BOOTSTRAP": "kafka-1:9092,kafka-2:9092"})
    assert not settings.uses_embedded_broker
    assert settings.bootstrap_servers == "kafka-1:9092,kafka-2:9092"


def test_nested_env_overrides_file(tmp_path: Path):
    config = tmp_path / "lienthong.toml"
    config.write_text("[embedded]\nport = 20000\n[worker]\ncount = 2\n")
    settings = load_settings(config, environ={"LIENTHONG_EMBEDDED__PORT": "20001"})
    assert settings.embedded.port == 20001
    assert settings.worker.count == 2


def test_bad_env_value_names_key_value_and_variable():
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"LIENTHONG_EMBEDDED__PORT": "abc"})
    message = str(err.value)
    assert "\n" not in message
    assert "embedded.port = 'abc'" in message
    assert "LIENTHONG_EMBEDDED__PORT" in message


def test_bad_file_value_names_key_and_file(tmp_path: Path):
    config = tmp_path / "lienthong.toml"
    config.write_text('[kafka]\nsecurity_protocol = "SASL_PLAN"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(config, environ={})
    assert "kafka.security_protocol = 'SASL_PLAN'" in str(err.value)
    assert str(config) in str(err.value)


def test_unknown_key_is_rejected_not_ignored(tmp_path: Path):
    config = tmp_path / "lienthong.toml"
    config.write_text("[worker]\nweb_prot = 7000\n")
    with pytest.raises(ConfigError, match=r"worker.web_prot .*unknown setting"):
        load_settings(config, environ={})


def test_embedded_broker_refuses_non_loopback_host():
    with pytest.raises(ConfigError, match="embedded.host = '0.0.0.0'.*loopback"):
        load_settings(environ={"LIENTHONG_EMBEDDED__HOST": "0.0.0.0"})


def test_bootstrap_without_port_is_rejected():
    with pytest.raises(ConfigError, match="kafka.bootstrap = 'kafka-1'"):
        load_settings(environ={"LIENTHONG_BOOTSTRAP": "kafka-1"})


def test_password_is_never_echoed():
    with pytest.raises(ConfigError) as err:
        load_settings(
            environ={"LIENTHONG_KAFKA__SASL_PASSWORD": "s3cret", "LIENTHONG_KAFKA__X": "1"}
        )
    assert "s3cret" not in str(err.value)


def test_security_is_configuration():
    from lienthong.connectors.kafka import kafka_python_config

    settings = load_settings(
        environ={
            "LIENTHONG_BOOTSTRAP": "kafka-1:9093",
            "LIENTHONG_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "LIENTHONG_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "LIENTHONG_KAFKA__SASL_USERNAME": "bentre",
            "LIENTHONG_KAFKA__SASL_PASSWORD": "pw",
        }
    )
    config = kafka_python_config(settings)
    assert config["security_protocol"] == "SASL_PLAINTEXT"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "bentre"
    assert config["sasl_plain_password"] == "pw"
    assert config["bootstrap_servers"] == ["kafka-1:9093"]


def test_catalogue_is_found_outside_the_checkout(tmp_path, monkeypatch):
    """An installed bus run from any directory still finds the packaged topic catalogue."""
    from lienthong.runtime.topics import load_catalogue

    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.topics_file.name == "topics.toml"
    assert settings.topics_file.is_absolute()
    assert load_catalogue(settings.topics_file).get("dossier-events").partitions >= 1


def test_run_dir_is_made_absolute_against_the_working_directory(tmp_path, monkeypatch) -> None:
    """Children (the broker runs in <run_dir>/broker) must all see the same directory."""
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}).run_dir == tmp_path / ".lienthong"
    assert load_settings(environ={"LIENTHONG_RUN_DIR": "a/b"}).run_dir == tmp_path / "a" / "b"
