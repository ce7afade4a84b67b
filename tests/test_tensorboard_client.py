"""A real TensorBoard server reads the landscape logs: runs, scalar tags and values, and mesh data over HTTP."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest

from experiments.landscape import surfaces, tb

STARTUP_SECONDS = 90   # TensorBoard must answer, with the runs loaded, within this long
RUN = "kaiming_normal-s0"


def synthetic_result():
    """A run's landscape with made-up losses: a bowl around the solution, a path that rises and falls."""
    xs = surfaces.axis(1.0, 9)
    bowl = 0.1 + np.add.outer(xs ** 2, 2 * xs ** 2)
    alphas = surfaces.path_alphas(8)
    path = {"alpha": alphas, "loss": 1 + np.sin(3 * alphas), "accuracy": 0.5 + alphas / 10}
    state = {"0.weight": np.arange(12.0).reshape(3, 4), "0.bias": np.ones(3)}
    pca = {"x": xs, "y": xs, "loss": bowl, "accuracy": bowl, "path": np.array([[1.0, 0.5], [0.4, 0.2], [0, 0]]),
           "explained": np.array([0.9, 0.1])}
    return {"init": state, "final": state, "interp": path, "surface": {"x": xs, "y": xs, "loss": bowl,
                                                                       "accuracy": bowl}, "pca": pca}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(base, path, **query):
    url = f"{base}{path}" + ("?" + urllib.parse.urlencode(query) if query else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.fixture
def server(tmp_path):
    """(base URL, logdir, result): TensorBoard serving a landscape log; stopped afterwards whatever happens."""
    logdir = str(tmp_path)
    result = synthetic_result()
    tb.write_run(logdir, RUN, result)
    tb.write_cross(logdir, {("a", "b"): result["interp"]}, [{"run": RUN, "final_loss": 0.1}], result["interp"]["alpha"])
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    proc = subprocess.Popen([exe, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.poll() is not None:
                pytest.fail(f"tensorboard exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            try:
                if set(json.loads(get(base, "/data/runs"))) >= {RUN, tb.CROSS}:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"tensorboard did not list the runs within {STARTUP_SECONDS} s")
            time.sleep(0.5)
        yield base, result
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_tensorboard_serves_runs_scalars_and_meshes(server):
    base, result = server
    tags = json.loads(get(base, "/data/plugin/scalars/tags"))
    assert "landscape/interp_init_final" in tags[RUN]
    assert "landscape/interp_pair/a_b" in tags[tb.CROSS]
    points = json.loads(get(base, "/data/plugin/scalars/scalars", run=RUN, tag="landscape/interp_init_final"))
    assert [p[1] for p in points] == list(range(len(result["interp"]["alpha"])))
    np.testing.assert_allclose([p[2] for p in points], result["interp"]["loss"], rtol=1e-6, atol=0)

    meshes = json.loads(get(base, "/data/plugin/mesh/tags"))
    assert set(meshes[RUN]) == {"landscape/surface", "landscape/pca_surface"}
    vertices, colours, faces = tb.mesh_arrays(result["surface"])
    for kind, expected, dtype in (("VERTEX", vertices, np.float32), ("FACE", faces, np.int32),
                                  ("COLOR", colours, np.uint8)):
        raw = get(base, "/data/plugin/mesh/data", run=RUN, tag="landscape/surface", sample=0, content_type=kind)
        np.testing.assert_array_equal(np.frombuffer(raw, dtype), expected.ravel(), err_msg=kind)
    assert np.frombuffer(get(base, "/data/plugin/mesh/data", run=RUN, tag="landscape/surface", sample=0,
                             content_type="VERTEX"), np.float32).reshape(-1, 3)[:, 2].max() == pytest.approx(3.1)
