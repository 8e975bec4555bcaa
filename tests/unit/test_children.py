"""Starting a child and waiting for its /health (lienthong.runtime.children), with real processes."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from lienthong.runtime.children import ChildNotReady, spawn_logged, wait_healthy
from lienthong.runtime.probe import free_port

SERVER = textwrap.dedent(
    """
    import http.server, sys, time
    status = sys.argv[2]
    time.sleep(0.5)  # not listening at first: the wait must keep polling
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = ('{"status": "%s"}' % status).encode()
            self.send_response(200); self.end_headers(); self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
    """
)


def test_waits_until_the_child_answers_ok(tmp_path: Path) -> None:
    port = free_port()
    child = spawn_logged([sys.executable, "-c", SERVER, str(port), "ok"], {}, tmp_path / "c.log")
    try:
        assert wait_healthy(child, f"http://127.0.0.1:{port}", 30, "server") >= 0.5
    finally:
        child.kill()
        child.wait()


def test_a_child_that_exits_is_reported_with_its_code_and_log(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    child = spawn_logged(
        [sys.executable, "-c", "import sys; print('no config'); sys.exit(3)"], {}, log
    )
    with pytest.raises(ChildNotReady, match=r"(?s)server exited with 3.*no config"):
        wait_healthy(child, f"http://127.0.0.1:{free_port()}", 30, "server", log.read_text)


def test_a_child_that_never_says_ok_times_out(tmp_path: Path) -> None:
    port = free_port()
    child = spawn_logged(
        [sys.executable, "-c", SERVER, str(port), "starting"], {}, tmp_path / "c.log"
    )
    try:
        with pytest.raises(ChildNotReady, match="not ready within 2"):
            wait_healthy(child, f"http://127.0.0.1:{port}", 2, "server")
    finally:
        child.kill()
        child.wait()
