"""`blindlink.link` / `blindlink.serve` run sessions over loopback mutual TLS with the CLI's
certificates and configs, and give the links.csv the CLI gives, whichever side is Python."""

import shutil
import socket
import threading
import time

import pytest

import blindlink
from conftest import EXAMPLES, read_csv


@pytest.fixture(scope="module")
def peers(cli, tmp_path_factory):
    base = tmp_path_factory.mktemp("peers")
    cli("certs", "--out", base / "certs", "--names", "registry,insurer")
    cli("keygen", "--out", base / "linkage.key")
    cli("synth", "--persons", 300, "--seed", 4, "--out", base / "data")
    shutil.copy(EXAMPLES / "peers" / "schema.toml", base / "schema.toml")
    return base


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configs(base, run, port):
    paths = []
    for party in ("registry", "insurer"):
        text = (EXAMPLES / "peers" / f"{party}.toml").read_text()
        text = text.replace("127.0.0.1:7443", f"127.0.0.1:{port}")
        text = text.replace(f'dir = "out/{party}"', f'dir = "out/{run}/{party}"')
        path = base / f"{party}-{run}.toml"
        path.write_text(text)
        paths.append(path)
    return paths


def links(base, run, party):
    rows = read_csv(base / "out" / run / party / "links.csv")
    header = rows[0]
    assert header == [
        "local_record_id",
        "link_id",
        "mode",
        "score",
        "status",
        "key",
        "match_probability",
        "match_weight",
    ]
    # link_id is drawn fresh per session; everything else is the data's.
    return sorted(tuple(v for h, v in zip(header, r) if h != "link_id") for r in rows[1:])


def retry(attempt, deadline=60.0):
    """Links until the server listens."""
    end = time.monotonic() + deadline
    while True:
        try:
            return attempt()
        except RuntimeError as e:
            if time.monotonic() > end or "refused" not in str(e).lower():
                raise
            time.sleep(0.2)


def cli_link(cli, config):
    def attempt():
        result = cli("link", "--config", config, "--quiet", check=False)
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
    retry(attempt)


def py_link(config):
    def attempt():
        try:
            return blindlink.link(config)
        except blindlink.ProtocolError as e:
            raise RuntimeError(str(e)) from e
    return retry(attempt)


def session(cli, base, run, server, client):
    registry, insurer = configs(base, run, free_port())
    served = {}
    if server == "cli":
        process = cli.popen("serve", "--config", registry, "--quiet")
    else:
        def serve():
            try:
                served["sessions"] = blindlink.serve(registry, timeout=120)
            except Exception as e:  # reported by the assertion below
                served["error"] = e
        thread = threading.Thread(target=serve)
        thread.start()
    if client == "cli":
        cli_link(cli, insurer)
    else:
        summary = py_link(insurer)
        assert summary["party"] == "insurer" and summary["peer"] == "registry"
        assert summary["output_dir"] == base / "out" / run / "insurer"
    if server == "cli":
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    else:
        thread.join(timeout=150)
        assert "error" not in served, served.get("error")
        assert [s["peer"] for s in served["sessions"]] == ["insurer"]
    return links(base, run, "registry"), links(base, run, "insurer")


def test_links_equal_whichever_side_is_python(cli, peers):
    want = session(cli, peers, "cli-cli", "cli", "cli")
    assert len(want[0]) > 100 and len(want[1]) > 100
    assert session(cli, peers, "cli-py", "cli", "py") == want
    assert session(cli, peers, "py-cli", "py", "cli") == want
    # Both in this process: serve in a thread, link here (each releases the GIL).
    assert session(cli, peers, "py-py", "py", "py") == want


def test_errors_are_the_cli_messages(cli, peers):
    registry, insurer = configs(peers, "errors", free_port())
    # No server listening: the session cannot start.
    want = cli.error("link", "--config", insurer, "--quiet")
    with pytest.raises(blindlink.ProtocolError) as e:
        blindlink.link(insurer)
    assert str(e.value) == want
    assert not (peers / "out" / "errors" / "insurer" / "links.csv").exists()
    # A config that does not exist, one with an unknown key.
    missing = peers / "missing.toml"
    with pytest.raises(blindlink.ConfigError) as e:
        blindlink.link(missing)
    assert str(e.value) == cli.error("link", "--config", missing)
    bad = peers / "bad.toml"
    bad.write_text(insurer.read_text() + "\n[extra]\nkey = 1\n")
    with pytest.raises(blindlink.ConfigError) as e:
        blindlink.serve(bad)
    assert str(e.value) == cli.error("serve", "--config", bad)
    # An input CSV that does not exist.
    nodata = peers / "nodata.toml"
    nodata.write_text(insurer.read_text().replace("data/insurer.csv", "data/none.csv"))
    with pytest.raises(blindlink.InputError) as e:
        blindlink.link(nodata)
    assert str(e.value) == cli.error("link", "--config", nodata)


def test_serve_stops_at_its_timeout(peers):
    registry, _ = configs(peers, "timeout", free_port())
    started = time.monotonic()
    assert blindlink.serve(registry, timeout=0.5) == []
    assert time.monotonic() - started < 10


SERVE_UNTIL_INTERRUPTED = """
import sys, blindlink
print("serving", flush=True)
try:
    blindlink.serve(sys.argv[1])
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_stops_serve(peers, tmp_path):
    """SIGINT drains the server and raises KeyboardInterrupt in Python, as Ctrl-C does."""
    import signal
    import subprocess
    import sys

    registry, _ = configs(peers, "sigint", free_port())
    process = subprocess.Popen([sys.executable, "-c", SERVE_UNTIL_INTERRUPTED, str(registry)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "serving\n"
    time.sleep(2)  # reading the input and listening
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert out == "interrupted\n", err
    assert process.returncode == 0


SERVE_THEN_SIGINT = """
import os, signal, sys, time, blindlink
signal.signal(signal.SIGINT, signal.SIG_DFL)  # SIGINT ends the process, as the program says
assert blindlink.serve(sys.argv[1], timeout=0.3) == []
print("served", flush=True)
os.kill(os.getpid(), signal.SIGINT)
time.sleep(5)
print("SIGINT did not end the process", flush=True)
"""


def test_serve_leaves_the_sigint_disposition_alone(peers):
    """`serve` installs no signal handler of its own: once it returned, SIGINT does what the
    program set (here the default action, which ends the process). tokio's `ctrl_c`, used
    before, left a process-wide handler behind that swallowed the signal."""
    import signal
    import subprocess
    import sys

    registry, _ = configs(peers, "sigint-after", free_port())
    result = subprocess.run([sys.executable, "-c", SERVE_THEN_SIGINT, str(registry)],
                            capture_output=True, text=True, timeout=120)
    assert result.stdout == "served\n", result.stderr
    assert result.returncode == -signal.SIGINT, result.stderr
