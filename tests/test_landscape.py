"""Loss landscapes: filter-normalised directions, the evaluator's backends and first-layer trick, the surfaces,
and an end-to-end run whose TensorBoard event files are read back."""
import json
import os

import numpy as np
import pytest

import manual
from experiments import checkpoint, data
from experiments.config import Config
from experiments.landscape import cli
from experiments.landscape import jobs, surfaces, tb
from experiments.landscape.directions import GUARD, random_directions
from experiments.landscape.evaluate import Evaluator
from manual import spec
from tests.events import load_events
from tests.tolerances import AGREE_F64, ROUNDING_F32, ROUNDING_F64

ARCHS = {"mlp": spec.get("mlp"), "lenet": spec.get("lenet"),
         "flatten-first": (spec.Flatten(), spec.Linear(784, 32), spec.Tanh(), spec.Linear(32, 10))}


def state(arch, seed=0, init="torch_default", dtype="float64"):
    return manual.build(ARCHS[arch], init=init, seed=seed, dtype=dtype).state_dict()


def mnist(arch, n=96, dtype="float64"):
    flat = arch == "mlp"
    return data.load("test", dtype=dtype, flatten=flat, limit=n)


def filter_norms(t):
    return np.linalg.norm(t.reshape(len(t), -1), axis=1)


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
def test_every_filter_has_the_norm_of_the_same_filter_of_the_weights(arch):
    weights = state(arch)                                   # torch_default: biases are nonzero
    for d in random_directions(weights, 2, seed=3):
        for name, w in weights.items():
            if w.ndim == 1:
                assert not d[name].any(), f"{name}: bias direction not zero"
            else:
                np.testing.assert_allclose(filter_norms(d[name]), filter_norms(w), **AGREE_F64, err_msg=name)
    assert any(w.ndim == 4 for w in weights.values()) == (arch == "lenet")


def test_bias_directions_can_be_kept_filter_normalised():
    weights = state("mlp")
    d = random_directions(weights, 1, seed=0, bias="filter")[0]
    np.testing.assert_allclose(np.abs(d["0.bias"]), np.abs(weights["0.bias"]), rtol=GUARD / 1e-6, atol=0)


def test_directions_are_drawn_from_their_seed():
    weights = state("mlp")
    a, b, c = (random_directions(weights, 1, seed=s)[0]["2.weight"] for s in (5, 5, 6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def grid_points():
    return np.array([[0.0, 0.0], [0.4, -0.7], [-1.0, 1.0], [0.05, 0.3]])


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
def test_manual_and_torch_evaluate_the_same_points_alike(arch):
    x, y = mnist(arch)
    centre = state(arch, init="kaiming_normal")
    dirs = random_directions(centre, 2, seed=1)
    got = {b: Evaluator(ARCHS[arch], x, y, backend=b, chunk=40)(centre, dirs, grid_points())
           for b in ("manual", "torch")}
    for i, what in enumerate(("loss", "accuracy")):
        np.testing.assert_allclose(got["manual"][i], got["torch"][i], **AGREE_F64, err_msg=what)


@pytest.mark.parametrize("arch, backend", [("mlp", "manual"), ("lenet", "manual"), ("mlp", "torch"),
                                           ("lenet", "torch")])
def test_first_layer_trick_equals_direct_evaluation(arch, backend):
    x, y = mnist(arch)
    centre = state(arch, init="kaiming_normal")
    dirs = random_directions(centre, 2, seed=2, bias="filter")     # nonzero bias directions go through it too
    trick = Evaluator(ARCHS[arch], x, y, backend=backend, chunk=40)
    direct = Evaluator(ARCHS[arch], x, y, backend=backend, chunk=40, trick=False)
    assert trick.trick and not direct.trick
    for a, b in zip(trick(centre, dirs, grid_points()), direct(centre, dirs, grid_points())):
        np.testing.assert_allclose(a, b, **ROUNDING_F64)


def test_a_network_not_starting_with_linear_or_conv_is_evaluated_directly():
    x, y = mnist("lenet")
    arch = ARCHS["flatten-first"]
    centre = manual.build(arch, init="xavier_uniform", seed=0).state_dict()
    ev = Evaluator(arch, x, y, chunk=40)
    net = manual.build(arch, init="zeros").eval()
    net.load_state_dict(centre)
    loss, acc = ev(centre)
    expected = manual.losses.cross_entropy(net.forward(x), y, reduction="mean")[0]
    assert not ev.trick
    np.testing.assert_allclose(loss, [expected], **ROUNDING_F64)


@pytest.mark.parametrize("backend", ["manual", "torch"])
def test_in_place_relu_leaves_the_evaluation_images_alone(backend):
    x, y = mnist("mlp")
    x -= x.mean()                                            # negative pixels, which a ReLU on them would zero
    arch = (spec.Flatten(), spec.ReLU(), spec.Linear(784, 10), spec.ReLU(), spec.Linear(10, 10))
    centre = manual.build(arch, init="xavier_uniform", seed=0).state_dict()
    ev = Evaluator(arch, x, y, backend=backend, chunk=40)
    before = x.copy()
    loss = ev(centre)[0]
    net = manual.build(arch, init="zeros").eval()
    net.load_state_dict(centre)
    assert np.array_equal(x, before)
    np.testing.assert_allclose(loss, [manual.losses.cross_entropy(net.forward(x), y, reduction="mean")[0]],
                               **ROUNDING_F64)


@pytest.mark.parametrize("backend", ["manual", "torch"])
def test_float32_points_are_computed_in_float32(backend):
    x, y = mnist("mlp", dtype="float32")
    centre = state("mlp", dtype="float32")
    dirs = random_directions(centre, 2, seed=0)
    ev = Evaluator(ARCHS["mlp"], x, y, backend=backend, dtype="float32")
    seen, score = [], ev.backend.score
    ev.backend.score = lambda logits, labels: (seen.append(str(logits.dtype)), score(logits, labels))[1]
    loss32 = ev(centre, dirs, grid_points())[0]
    assert seen and {s.removeprefix("torch.") for s in seen} == {"float32"}, seen
    up = [{k: v.astype(np.float64) for k, v in s.items()} for s in (centre, *dirs)]   # the same points, exactly
    loss64 = Evaluator(ARCHS["mlp"], x.astype(np.float64), y, backend=backend)(up[0], up[1:], grid_points())[0]
    np.testing.assert_allclose(loss32, loss64, **ROUNDING_F32)
    assert not np.allclose(loss32, loss64, **ROUNDING_F64), "float32 rounding shows: not a float64 evaluation"


@pytest.mark.parametrize("backend", ["manual", "torch"])
def test_surface_centre_and_path_ends_are_the_losses_at_those_weights(backend):
    x, y = mnist("mlp")
    init, final = state("mlp", seed=0, init="kaiming_normal"), state("mlp", seed=1, init="xavier_normal")
    ev = Evaluator(ARCHS["mlp"], x, y, backend=backend, chunk=40)
    surface = surfaces.random_surface(ev, final, seed=0, span=1.0, resolution=5)
    at_final, at_init = ev(final), ev(init)
    assert surface["x"][2] == surface["y"][2] == 0
    np.testing.assert_allclose(surface["loss"][2, 2], at_final[0][0], **ROUNDING_F64)
    path = surfaces.interpolate(ev, init, final, surfaces.path_alphas(4))
    ends = [np.flatnonzero(path["alpha"] == a)[0] for a in (0, 1)]
    assert ends == [1, 5] and len(path["alpha"]) == 7                    # one step past each end
    np.testing.assert_allclose(path["loss"][ends], [at_init[0][0], at_final[0][0]], **ROUNDING_F64)
    np.testing.assert_allclose(path["accuracy"][ends], [at_init[1][0], at_final[1][0]], **ROUNDING_F64)


def test_pca_plane_recovers_a_planar_trajectory():
    u, v = np.zeros(14), np.zeros(14)
    u[0], v[5] = 1.0, 1.0
    coords = np.array([[3.0, 1.0], [2.0, -1.0], [1.5, 0.5], [0.5, 0.8], [0.0, 0.0]])      # the last is the solution
    snapshots = [{"a": (a * u + b * v)[:12].reshape(3, 4), "b": (a * u + b * v)[12:]} for a, b in coords]
    dirs, explained, path = surfaces.pca_plane(snapshots)
    vectors = [np.concatenate([d["a"].ravel(), d["b"]]) for d in dirs]
    np.testing.assert_allclose([np.linalg.norm(w) for w in vectors], [1, 1], **ROUNDING_F64)
    np.testing.assert_allclose(path @ np.array([vectors[0][[0, 5]], vectors[1][[0, 5]]]), coords, atol=1e-12)
    assert path[0, 0] > 0 and path[0, 1] >= 0 and explained.sum() == pytest.approx(1)
    with pytest.raises(ValueError, match="two dimensions"):
        surfaces.pca_plane(snapshots[:3])


def test_barrier_is_the_peak_above_the_mean_of_the_ends():
    path = {"alpha": np.array([-0.5, 0, 0.5, 1, 1.5]), "loss": np.array([9.0, 1.0, 4.0, 3.0, 9.0])}
    assert surfaces.barrier(path) == 2.0


def test_meshes_stay_under_the_face_limit():
    xs = surfaces.axis(1.0, 301)
    surface = {"x": xs, "y": xs, "loss": np.add.outer(xs ** 2, xs ** 2) * 20}
    vertices, colours, faces = tb.mesh_arrays(surface)
    assert faces.shape[1] < tb.MAX_FACES and faces.max() < vertices.shape[1] and colours.dtype == np.uint8
    assert vertices[0, :, 1].max() == pytest.approx(tb.MESH_HEIGHT)     # the clipped loss, scaled, is the height


TINY = ["--resolution", "5", "--eval-samples", "64", "--sharpness-dirs", "2"]
TRAIN = ["--epochs", "1", "--limit-train", "256", "--batch-size", "64", "--snapshots-per-epoch", "4", "--dtype", "float64"]


@pytest.mark.slow
def test_end_to_end_writes_event_files_tensorboard_reads_back(tmp_path, capsys):
    logdir = str(tmp_path / "tb")
    argv = [*TINY, *TRAIN, "--inits", "kaiming_normal", "xavier_uniform", "--seeds", "0", "--logdir", logdir, "--workers", "2"]
    assert cli.main(argv) == 0
    runs = ["kaiming_normal-s0", "xavier_uniform-s0"]
    assert sorted(os.listdir(logdir)) == sorted([*runs, tb.CROSS, "png", "summary.json"])
    for run in runs:
        acc = load_events(os.path.join(logdir, run))
        scalars = acc.Tags()["scalars"]
        assert "landscape/interp_init_final" in scalars
        steps = [e.step for e in acc.Scalars("landscape/interp_init_final")]
        assert steps == list(range(7))
        assert {"hparams/final_loss", "hparams/sharpness", "hparams/distance", "hparams/worst_barrier"} <= set(scalars)
        assert set(acc.Tags()["images"]) == {f"surface/{run}", f"pca_surface/{run}", "curvature/density"}
        mesh = acc.PluginTagToContent("mesh")
        assert {f"surface/{run}_VERTEX", f"surface/{run}_FACE", f"surface/{run}_COLOR",
                f"pca_surface/{run}_VERTEX"} <= set(mesh)
        vertices = acc.Tensors(f"surface/{run}_VERTEX")[0].tensor_proto
        assert [d.size for d in vertices.tensor_shape.dim] == [1, 25, 3]
        assert set(acc.PluginTagToContent("hparams")) == {"_hparams_/session_start_info", "_hparams_/session_end_info"}
        assert {"hparams/test_accuracy", "hparams/final_accuracy"} <= set(scalars)
        assert "weights_init/0.weight" in acc.Tags()["histograms"]
        assert os.path.isfile(os.path.join(logdir, "png", f"{run}_pca.png"))
    assert "pair/to_xavier_uniform-s0" in load_events(os.path.join(logdir, runs[0])).Tags()["scalars"]
    assert "pair/to_kaiming_normal-s0" in load_events(os.path.join(logdir, runs[1])).Tags()["scalars"]
    summary = json.load(open(os.path.join(logdir, "summary.json")))
    assert [r["run"] for r in summary["runs"]] == runs and len(summary["barriers"]) == 1
    out = capsys.readouterr().out
    assert "barrier kaiming_normal-s0 <-> xavier_uniform-s0" in out


@pytest.mark.slow
def test_from_runs_reuses_finished_training(tmp_path):
    from experiments.train import train_and_evaluate

    cfg = Config(backend="manual", init="lecun_normal", seed=3, epochs=1, limit_train=128, batch_size=32,
                 dtype="float64")
    run_dir = str(tmp_path / "runs" / "one")
    train_and_evaluate(cfg, run_dir, snapshots_per_epoch=4, quiet=True)
    assert os.listdir(run_dir).count(jobs.SNAPSHOTS) == 0   # stored once, in manual/, where jobs.finished reads them
    logdir = str(tmp_path / "tb")
    # a lone run: two local workers share its grid points (a SpreadEvaluator)
    assert cli.main([*TINY, "--from-runs", str(tmp_path / "runs"), "--logdir", logdir, "--workers", "2"]) == 0
    summary = json.load(open(os.path.join(logdir, "summary.json")))["runs"][0]
    assert summary["run"] == "lecun_normal-s3"
    final = checkpoint.load_arrays(os.path.join(run_dir, "final.npz"))
    x, y = mnist("mlp", n=64)
    expected = Evaluator(spec.get("mlp"), x, y)(final)[0][0]
    assert summary["final_loss"] == pytest.approx(expected, rel=ROUNDING_F64["rtol"])
    assert "pca_surface/lecun_normal-s3" in load_events(os.path.join(logdir, "lecun_normal-s3")).Tags()["images"]


@pytest.mark.parametrize("argv, message", [
    (["--resolution", "4"], "--resolution must be odd"),
    (["--span", "-1"], "--span"),
    (["--inits", "bogus"], "unknown init 'bogus'"),
    (["--eval-samples", "20000"], "10000"),
    (["--from-runs", "/nonexistent"], "is not a directory"),
    (["--from-runs", "/tmp", "--epochs", "2"], "--from-runs reuses finished runs"),
    (["--from-runs", "/tmp", "--seeds", "2"], "--from-runs reuses finished runs"),
])
def test_bad_flags_fail_on_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1, err


def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for flag in ("--arch", "--inits", "--seeds", "--backend", "--epochs", "--lr", "--from-runs", "--resolution",
                 "--span", "--eval-samples", "--logdir", "--workers"):
        assert flag in out
