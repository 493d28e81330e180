"""The Ray engine (engines/ray_data.py): the same embeddings as the local pipeline, Parquet shards
and ingest, a two-node cluster on this machine, and builds surviving a killed worker or driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from semantic_moments.errors import ConfigError

from conftest import SHARED, moving_square, need, need_data, write_video

ray = need("ray")

KTH = SHARED / "data" / "kth_partial"
BIN = Path(sys.executable).parent
CLUSTER_ENV: dict[str, str] = {}  # the environment the cluster's nodes and drivers share


def _kth_clips() -> list[Path]:
    clips = sorted(path for path in KTH.rglob("*") if path.is_file() and path.suffix in (".mp4", ".avi"))
    if not clips:
        need_data(KTH / "missing", f"clips in {KTH}")
    return clips


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def test_ray_embeddings_equal_the_local_pipeline_and_bad_files_are_skipped(local_ray, default_model, tmp_path):
    from semantic_moments.engines.ray_data import RayEngine

    clips = _kth_clips()
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    engine = RayEngine(default_model.options(), files_per_task=2)
    results = {result.source: result for result, _ in engine.iter_results([*clips, bad])}
    assert set(results) == {str(path) for path in [*clips, bad]}
    assert results[str(bad)].embedding is None and "broken.mp4" in str(results[str(bad)].error)
    local = {result.source: result.embedding for result in default_model.iter_embed(clips)}
    for path in clips:
        remote = results[str(path)].embedding
        np.testing.assert_allclose(remote.vector(), local[str(path)].vector(), rtol=0, atol=1e-6)
        assert remote.content_hash == local[str(path)].content_hash


def test_ray_build_commits_every_clip_and_a_rerun_has_nothing_to_do(local_ray, default_model, tmp_path):
    from semantic_moments.collection import build_index
    from semantic_moments.engines.ray_data import RayEngine
    from semantic_moments.index import Index

    engine = RayEngine(default_model.options())
    with Index.open(tmp_path / "index", create=True) as index:
        summary = build_index(index, [KTH], default_model, engine=engine)
        assert len(summary.added) == len(_kth_clips()) == len(index) and sum(summary.workers.values()) == len(index)
        again = build_index(index, [KTH], default_model, engine=engine)
        assert again.counts()["unchanged"] == len(index) and not again.workers
        with pytest.raises(Exception, match="local engine only"):
            build_index(index, [KTH], default_model, engine=engine, windows="4:1")


def test_embed_to_parquet_then_ingest_validates_every_row(local_ray, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from semantic_moments.cli import main
    from semantic_moments.index import Index

    clips = _kth_clips()[:3]
    out = tmp_path / "shards"
    assert main(["embed", *map(str, clips), str(tmp_path / "missing.mp4"), "-o", str(out), "--engine", "ray",
                 "--quiet", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["embedded"] == 3 and list(report["failures"]) == [str(tmp_path / "missing.mp4")]
    table = pq.read_table(out)
    assert table.num_rows == 3 and {"path", "content_hash", "settings", "moment_1", "flow_4", "motion_map"} <= set(
        table.column_names)
    # a damaged row among good ones: reported and skipped, the rest ingested
    rows = table.to_pylist()
    rows[0]["embedding"] = rows[0]["embedding"][:40]
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), tmp_path / "damaged.parquet")
    assert main(["index", "ingest", str(tmp_path / "damaged.parquet"), "--index", str(tmp_path / "index"),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "2 ingested" in err and "1 failed" in err and "not a safetensors embedding" in err
    with Index.open(tmp_path / "index") as index:
        assert len(index) == 2 and index.check() == []
    assert main(["index", "ingest", str(tmp_path / "nowhere"), "--index", str(tmp_path / "index")]) == 2


def test_ray_options_need_the_ray_engine(capsys):
    from semantic_moments.cli import main

    assert main(["index", "build", str(KTH), "--index", "/tmp/unused-index", "--ray-workers", "2"]) == 2
    assert "--ray-workers needs --engine ray" in capsys.readouterr().err


@pytest.mark.parametrize("address, message", [
    ("127.0.0.1:1", "no Ray cluster answers there"),
    ("foo:bar", "not HOST:PORT"),
    ("ray://127.0.0.1:10001", "ray://"),
])
def test_a_bad_ray_address_is_one_line_within_the_timeout_and_creates_nothing(address, message, tmp_path, capsys):
    import time

    from semantic_moments.cli import main

    started = time.monotonic()
    code = main(["index", "build", str(KTH), "--index", str(tmp_path / "idx"), "--engine", "ray",
                 "--ray-address", address])
    error = capsys.readouterr().err
    assert code != 0 and message in error and "Traceback" not in error
    assert time.monotonic() - started < 35 and not (tmp_path / "idx").exists()


def test_workers_no_node_can_hold_are_refused_up_front(local_ray, default_model, tmp_path):
    from semantic_moments.engines.ray_data import RayEngine

    with pytest.raises(ConfigError, match="no node of the Ray cluster can hold a worker of 64 CPU"):
        RayEngine(default_model.options(), cpus_per_worker=64).check_resources()
    with pytest.raises(ConfigError, match="1 GPU"):
        RayEngine(default_model.options(), gpus_per_worker=1).check_resources()


# -- a two-node cluster on this machine ----------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """``ray start --head`` and a second node joining it, 1 CPU each, in a private temporary folder;
    stopped after the module."""
    if ray.is_initialized():
        ray.shutdown()
    folder = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay short
    port = 20000 + os.getpid() % 20000
    # a private home: no ~/.ray/auth_token of another Ray session makes the nodes disagree on authentication
    # and none of what an in-process ray.init() put in os.environ (it sets RAY_AUTH_MODE=token)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_") and key != "PYTHONBREAKPOINT"}
    env.update({"RAY_USAGE_STATS_ENABLED": "0", "HOME": folder})
    CLUSTER_ENV.clear()
    CLUSTER_ENV.update(env)
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    def start(*arguments: str) -> None:
        done = subprocess.run([BIN / "ray", "start", *arguments, *common], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr[-2000:]

    start("--head", "--port", str(port), "--temp-dir", folder, "--include-dashboard", "false")
    try:
        start("--address", f"127.0.0.1:{port}")
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([BIN / "ray", "stop", "--force"], capture_output=True, env=env)


def _cluster_processes(pattern: str) -> list[str]:
    """Process ids matching ``pattern`` that belong to this module's cluster (its private HOME), not
    to any other Ray on the machine."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    home = f"HOME={CLUSTER_ENV['HOME']}".encode()
    ours = []
    for pid in found:
        try:
            if home in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                ours.append(pid)
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return ours


def _collection(folder: Path, count: int) -> Path:
    folder.mkdir()
    for number in range(count):
        write_video(folder / f"clip{number:02d}.mp4", moving_square(24, 96, (40 + 8 * number, 200, 90),
                                                                    "right" if number % 2 else "down"))
    return folder


def _build_command(folder: Path, index: Path, address: str) -> list[str]:
    return [str(BIN / "semantic-moments"), "index", "build", str(folder), "--index", str(index), "--engine", "ray",
            "--ray-address", address, "--ray-files-per-task", "1", "--quiet", "--json"]


def _wait_for_clips(index: Path, count: int, process: subprocess.Popen, timeout: float = 120.0) -> bool:
    """True once the index holds ``count`` clips while ``process`` still runs."""
    from semantic_moments.index import Index

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if (index / "index.sqlite").exists():
            try:
                with Index.open(index) as opened:
                    if len(opened) >= count:
                        return process.poll() is None
            except Exception:  # noqa: BLE001 - being created
                pass
        time.sleep(0.1)
    return False


def test_two_nodes_share_the_build(cluster, tmp_path):
    folder = _collection(tmp_path / "videos", 8)
    output = subprocess.run(_build_command(folder, tmp_path / "index", cluster), capture_output=True, text=True,
                            timeout=300, env=CLUSTER_ENV)
    assert output.returncode == 0, output.stderr
    summary = json.loads(output.stdout)
    assert summary["added"] == 8 and len(summary["workers"]) == 2  # both nodes embedded clips
    assert sum(summary["workers"].values()) == 8


def test_a_killed_worker_is_replaced_and_nothing_is_lost_or_duplicated(cluster, tmp_path):
    from semantic_moments.index import Index

    folder = _collection(tmp_path / "videos", 24)
    process = subprocess.Popen(_build_command(folder, tmp_path / "index", cluster), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=CLUSTER_ENV)
    try:
        assert _wait_for_clips(tmp_path / "index", 2, process), "the build ended before a worker could be killed"
        workers = _cluster_processes("MapWorker")
        assert workers, "no Ray Data worker process of this cluster found"
        os.kill(int(workers[0]), signal.SIGKILL)
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 0 and out.strip(), err[-3000:]
    assert json.loads(out)["failed"] == 0
    with Index.open(tmp_path / "index") as index:
        assert len(index) == 24 and index.check() == []
        assert sorted(index.builds.files()) == sorted(str(path) for path in folder.iterdir())


def test_a_killed_driver_leaves_a_valid_index_and_the_rerun_completes(cluster, tmp_path):
    from semantic_moments.index import Index

    folder = _collection(tmp_path / "videos", 24)
    process = subprocess.Popen(_build_command(folder, tmp_path / "index", cluster), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=CLUSTER_ENV)
    try:
        assert _wait_for_clips(tmp_path / "index", 2, process), "the build ended before the driver could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    with Index.open(tmp_path / "index") as index:
        done = len(index)
        assert 2 <= done < 24 and index.check() == []
    output = subprocess.run(_build_command(folder, tmp_path / "index", cluster), capture_output=True, text=True,
                            timeout=300, env=CLUSTER_ENV)
    assert output.returncode == 0, output.stderr
    summary = json.loads(output.stdout)
    assert summary["unchanged"] == done and summary["added"] == 24 - done


def test_ctrl_c_stops_a_ray_build_keeping_what_was_committed(cluster, tmp_path):
    from semantic_moments.index import Index

    folder = _collection(tmp_path / "videos", 24)
    process = subprocess.Popen(_build_command(folder, tmp_path / "index", cluster), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=CLUSTER_ENV, text=True)
    try:
        assert _wait_for_clips(tmp_path / "index", 2, process), "the build ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)  # it ran to the end (35-38 s more) before
    finally:
        process.kill()
    assert process.returncode == 130 and "run the same command again" in err
    with Index.open(tmp_path / "index") as index:
        assert 2 <= len(index) < 24 and index.check() == []


def test_the_local_path_never_imports_ray():
    code = ("import sys, semantic_moments, semantic_moments.cli, semantic_moments.collection, "
            "semantic_moments.engines.ray_data, semantic_moments.server.app; "
            "from semantic_moments.cli import main; main(['backbones']); assert 'ray' not in sys.modules, 'ray loaded'")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert output.returncode == 0, output.stderr



@pytest.mark.parametrize("reply", [b"HTTP/1.1 400 Bad Request\r\n\r\n", None])
def test_an_address_held_by_something_else_is_refused_fast_and_creates_nothing(reply, tmp_path, capsys):
    """#31 item 16: a port held by a web server (or one that never answers) is not a Ray cluster:
    one line within the timeout, no index folder, no traceback."""
    import socket
    import threading
    import time

    from semantic_moments.engines.ray_data import RayEngine

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    stop = threading.Event()

    def answer() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            connection.recv(64)
            if reply is not None:
                connection.sendall(reply)
                connection.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        engine = RayEngine({}, address=f"127.0.0.1:{port}")
        started = time.monotonic()
        with pytest.raises(ConfigError, match="not a Ray cluster|no Ray cluster answers"):
            engine.check_address(timeout=2.0)
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        thread.join()
        server.close()
