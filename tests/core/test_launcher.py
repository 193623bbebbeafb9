"""The launcher's readiness: start() returns only when the models are ready and every endpoint answers.

A stand-in for tritonserver opens its HTTP endpoint at once and its metrics endpoint later, the order in which
tritonserver opens them; a client that reads metrics right after start() must not be refused.
"""

from __future__ import annotations

import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from rank1_triton.errors import ServerStartError
from rank1_triton.launch.launcher import TritonServer, free_ports
from rank1_triton.launch.tritonserver import TritonInstall

STAND_IN = textwrap.dedent('''
    import http.server, sys, threading, time

    args = dict(arg[2:].split("=", 1) for arg in sys.argv[1:] if arg.startswith("--") and "=" in arg)

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    def serve(port):
        http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Answer).serve_forever()

    threading.Thread(target=serve, args=(args["http-port"],), daemon=True).start()
    time.sleep(float(args.get("metrics-delay", "0")))
    if args.get("allow-metrics", "true").lower() not in ("false", "off", "0"):
        serve(args["metrics-port"])
    time.sleep(3600)
''')


def stand_in_server(tmp_path: Path, *extra_args: str) -> TritonServer:
    script = tmp_path / "tritonserver.py"
    script.write_text(STAND_IN)
    binary = tmp_path / "tritonserver"
    binary.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    binary.chmod(0o755)
    return TritonServer(tmp_path / "repository", tmp_path / "work", free_ports(), extra_args=extra_args,
                        install=TritonInstall(binary, tmp_path / "backends"))


def test_start_waits_for_the_metrics_endpoint_opened_after_http(tmp_path):
    server = stand_in_server(tmp_path, "--metrics-delay=2")
    try:
        server.start(timeout_s=30)
        with urllib.request.urlopen(server.metrics_url, timeout=5) as response:
            assert response.status == 200
    finally:
        server.stop()


@pytest.mark.parametrize("switch", ["--allow-metrics=false", "--allow-metrics=OFF", "--allow-metrics=0"])
def test_start_does_not_wait_for_metrics_that_are_switched_off(tmp_path, switch):
    server = stand_in_server(tmp_path, switch)
    try:
        server.start(timeout_s=10)
        assert server.running
    finally:
        server.stop()


def test_a_server_whose_metrics_never_open_is_not_ready(tmp_path):
    server = stand_in_server(tmp_path, "--metrics-delay=3600")
    with pytest.raises(ServerStartError, match=f"not ready after 3 s \\({server.metrics_url} did not answer\\)"):
        server.start(timeout_s=3)
    assert not server.running
