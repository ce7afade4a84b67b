"""A real TensorBoard server reads a logdir holding a training run and landscape runs: scalar tags and values,
mesh data and its 3-D view, and one hparams table with both kinds of columns, over HTTP."""
import contextlib
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

from experiments.config import Config
from experiments.events import EventWriter, add_session
from experiments.landscape import surfaces, tb
from experiments.train.loop import hparams_of

STARTUP_SECONDS = 90   # TensorBoard must answer, with the runs loaded, within this long
RUN, OTHER, TRAINING = "kaiming_normal-s0", "xavier_uniform-s0", "mlp/manual"
pytestmark = pytest.mark.slow


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


def write_logdir(root):
    """A training run (mlp/manual) and a landscape (landscape/<run> for two runs, landscape/cross_init) under
    root, as make run leaves them; the synthetic landscape result."""
    result = synthetic_result()
    landscape = os.path.join(root, "landscape")
    training = EventWriter(os.path.join(root, TRAINING))
    training.add_scalar("test/loss", 0.3, 10)
    add_session(training, hparams_of(Config(), "manual"), {"test_accuracy": 91.5, "test_loss": 0.3}, 10)
    training.close()
    for run in (RUN, OTHER):
        tb.write_run(landscape, run, result)
        tb.write_hparams(landscape, run, hparams_of(Config(init=run.split("-")[0]), "manual"),
                         {k: 0.5 for k in tb.HPARAMS_METRICS})
    tb.write_cross(landscape, {(RUN, OTHER): result["interp"]}, [{"run": RUN, "final_loss": 0.1}],
                   result["interp"]["alpha"])
    return result


RUNS = {TRAINING, f"landscape/{RUN}", f"landscape/{OTHER}", f"landscape/{tb.CROSS}"}


@contextlib.contextmanager
def serving(logdir, runs):
    """The base URL of TensorBoard serving logdir, once it lists runs; stopped afterwards whatever happens."""
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
                if set(json.loads(get(base, "/data/runs"))) >= runs:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"tensorboard did not list the runs within {STARTUP_SECONDS} s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, result): TensorBoard serving write_logdir's logdir."""
    logdir = str(tmp_path_factory.mktemp("runs"))
    result = write_logdir(logdir)
    with serving(logdir, RUNS) as base:
        yield base, result


def post(base, path, body):
    request = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_tensorboard_serves_runs_scalars_and_meshes(server):
    base, result = server
    run = f"landscape/{RUN}"
    tags = json.loads(get(base, "/data/plugin/scalars/tags"))
    assert "landscape/interp_init_final" in tags[run]
    assert "pair/" + tb.pair_name(OTHER) in tags[run] and "pair/" + tb.pair_name(RUN) in tags[f"landscape/{OTHER}"]
    points = json.loads(get(base, "/data/plugin/scalars/scalars", run=run, tag="landscape/interp_init_final"))
    assert [p[1] for p in points] == list(range(len(result["interp"]["alpha"])))
    np.testing.assert_allclose([p[2] for p in points], result["interp"]["loss"], rtol=1e-6, atol=0)
    back = json.loads(get(base, "/data/plugin/scalars/scalars", run=f"landscape/{OTHER}", tag="pair/" + tb.pair_name(RUN)))
    np.testing.assert_allclose([p[2] for p in back], result["interp"]["loss"][::-1], rtol=1e-6, atol=0)

    meshes = json.loads(get(base, "/data/plugin/mesh/tags"))
    assert set(meshes[run]) == {f"surface/{RUN}", f"pca_surface/{RUN}"}   # the run's name in the tag
    vertices, colours, faces = tb.mesh_arrays(result["surface"])
    for kind, expected, dtype in (("VERTEX", vertices, np.float32), ("FACE", faces, np.int32),
                                  ("COLOR", colours, np.uint8)):
        raw = get(base, "/data/plugin/mesh/data", run=run, tag=f"surface/{RUN}", sample=0, content_type=kind)
        np.testing.assert_array_equal(np.frombuffer(raw, dtype), expected.ravel(), err_msg=kind)


def test_meshes_open_in_a_3d_view_with_the_bowl_standing_up(server):
    base, result = server
    for meta in json.loads(get(base, "/data/plugin/mesh/meshes", run=f"landscape/{RUN}", tag=f"surface/{RUN}")):
        assert json.loads(meta["config"]) == tb.MESH_CONFIG
    camera = tb.MESH_CONFIG["camera"]
    assert camera["position"][1] > 0 and camera["position"][0] ** 2 + camera["position"][2] ** 2 > 0   # above, aside
    vertices = tb.mesh_arrays(result["surface"])[0][0]                            # (V, 3), y up
    assert vertices[:, 1].min() == 0 and vertices[:, 1].max() == pytest.approx(tb.MESH_HEIGHT)
    assert vertices[:, 0].min() == -1 and vertices[:, 0].max() == 1 and vertices[:, 2].min() == -1


def test_the_hparams_table_holds_training_and_landscape_columns(server):
    base, _ = server
    experiment = post(base, "/data/plugin/hparams/experiment", {"experimentName": ""})
    hparams = {h["name"] for h in experiment["hparamInfos"]}
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert {"lr", "optimizer", "init", "seed", "backend", "batch_size"} <= hparams
    assert {"hparams/test_accuracy", "hparams/final_loss", "hparams/sharpness", "hparams/worst_barrier"} <= metrics
    assert not any(t.startswith("hparam/") for t in metrics)
    groups = post(base, "/data/plugin/hparams/session_groups",
                  {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS"],
                   "colParams": [{"hparam": h, "includeInResult": True} for h in sorted(hparams)]
                   + [{"metric": {"tag": t, "group": ""}, "includeInResult": True} for t in sorted(metrics)],
                   "startIndex": 0, "sliceSize": 100})
    sessions = {g["name"]: g for g in groups["sessionGroups"]}
    assert set(sessions) == {TRAINING, f"landscape/{RUN}", f"landscape/{OTHER}"}
    assert sessions[f"landscape/{RUN}"]["hparams"]["init"] == "kaiming_normal"
    assert sessions[TRAINING]["hparams"]["lr"] == Config().lr
