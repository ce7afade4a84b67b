"""The landscape's curvature, alignment and Bezier records end to end: a small trained net and a copy of it with
its hidden units permuted (the same function under another name), reused with --from-runs."""
import contextlib
import dataclasses
import io
import json
import os

import numpy as np
import pytest

import manual
from experiments import checkpoint, data
from experiments.config import Config, arch_of
from experiments.landscape import align, cli, curvature, jobs, partners, spread, tb
from experiments.train import train_and_evaluate
from tests.events import load_events
from tests.tolerances import CURVATURE_EIGEN, HVP_AGREE, ROUNDING_F64, STANDARD_ERRORS

CFG = Config(backend="manual", hidden=(3,), init="kaiming_normal", seed=0, epochs=1, limit_train=256, batch_size=32,
             dtype="float64")                                   # 784-3-10: 2,395 parameters, a full Hessian is cheap
SWAP = [np.array([2, 0, 1])]                                    # the copy's hidden units: a 3-cycle
SAMPLES = 32                                                    # --curvature-samples
RUNS = ("kaiming_normal-s0", "kaiming_normal-s1")
ARGV = ["--resolution", "5", "--eval-samples", "64", "--sharpness-dirs", "2", "--workers", "1",
        "--curvature-samples", str(SAMPLES), "--align", "both", "--bezier-steps", "4"]


@pytest.fixture(scope="module")
def landscape(tmp_path_factory):
    """(logdir, summary.json, stdout, the two finals) of one landscape over the net and its permuted copy."""
    root = tmp_path_factory.mktemp("pairs")
    train_and_evaluate(CFG, str(root / "runs" / "a"), quiet=True)
    final = checkpoint.load_arrays(str(root / "runs" / "a" / "final.npz"))
    copy = root / "runs" / "b"
    copy.mkdir()
    checkpoint.save_arrays(str(copy / "final.npz"), align.permute(final, arch_of(CFG), SWAP))
    (copy / "config.json").write_text(dataclasses.replace(CFG, seed=1).to_json())
    logdir = str(root / "tb")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main([*ARGV, "--from-runs", str(root / "runs"), "--logdir", logdir]) == 0
    summary = json.load(open(os.path.join(logdir, "summary.json")))
    return logdir, summary, out.getvalue(), final


def reference(state):
    """(λ_min, λ_max to eigsh's full accuracy, Hutchinson's trace over 200 other probes) of the Hessian of CFG's
    net at state on the curvature's images, by torch's double backward (the other implementation)."""
    x, y = data.load("test", dtype="float64", flatten=True, limit=SAMPLES)
    op = curvature.operator("torch", arch_of(CFG), state, x, y)
    found = curvature.extremes(op, tol=0)
    return found["lambda_min"], found["lambda_max"], curvature.hutchinson(op, samples=200, seed=CFG.seed + 1)


def test_a_permuted_copy_has_zero_barrier_after_alignment_and_a_positive_one_before(landscape):
    _, summary, out, _ = landscape
    (pair,) = summary["barriers"]
    assert (pair["a"], pair["b"]) == RUNS and pair["barrier"] > 1e-3
    assert pair["barrier_aligned_weight"] == pair["barrier_aligned_activation"] == pair["barrier_aligned"] == 0.0
    assert summary["barrier_definition"] == tb.BARRIER and f"({tb.BARRIER})" in out
    assert "0.0000 aligned (" in out and "along the Bezier curve" in out
    for row in summary["runs"]:
        assert row["worst_barrier"] == pair["barrier"] and row["worst_barrier_aligned"] == 0.0
        assert row["worst_barrier_bezier"] == pair["barrier_bezier"]
    # the aligned partner is the solution itself: at the centre of both planes, on them
    for run, other in (RUNS, RUNS[::-1]):
        where = summary["partners"][run]["surface"][other]
        assert where["off"] == 0.0 and where["coords"] == [0.0, 0.0]


def test_curvature_is_the_full_hessians_at_the_solution_and_the_initial_weights(landscape):
    _, summary, _, final = landscape
    a, b = summary["runs"]
    init = manual.build(arch_of(CFG), init=CFG.init, seed=CFG.seed, dtype=CFG.dtype).state_dict()
    for row, suffix, state in ((a, "", final), (a, "_init", init)):
        low, high, trace = reference(state)
        scale = max(abs(low), abs(high))
        assert low <= 0 < high                                   # a minimum of a non-convex loss: both signs
        assert abs(row[f"lambda_max{suffix}"] - high) <= CURVATURE_EIGEN * scale
        assert abs(row[f"lambda_min{suffix}"] - low) <= CURVATURE_EIGEN * scale
        spread = np.hypot(row[f"trace_ci95{suffix}"] / 1.96, trace["stderr"])   # two independent estimates
        assert abs(row[f"trace{suffix}"] - trace["trace"]) <= STANDARD_ERRORS * spread
    # relabelling the hidden units conjugates the Hessian by a permutation: the same spectrum
    scale = abs(a["lambda_max"]) + abs(a["lambda_min"])
    assert abs(a["lambda_max"] - b["lambda_max"]) <= CURVATURE_EIGEN * scale
    assert abs(a["lambda_min"] - b["lambda_min"]) <= CURVATURE_EIGEN * scale


def test_tensorboard_holds_the_new_scalars_hparams_charts_and_pngs(landscape):
    logdir, summary, _, _ = landscape
    for row in summary["runs"]:
        acc = load_events(os.path.join(logdir, row["run"]))
        scalars = acc.Tags()["scalars"]
        assert {"hparams/lambda_max", "hparams/lambda_min", "hparams/trace", "hparams/lambda_max_init",
                "hparams/worst_barrier_aligned", "hparams/worst_barrier_bezier"} <= set(scalars)
        lam = acc.Scalars("curvature/lambda_max")
        assert [e.step for e in lam] == [0, 1]
        assert [e.value for e in lam] == pytest.approx([row["lambda_max_init"], row["lambda_max"]], rel=1e-6)
        assert "curvature/density" in acc.Tags()["images"]
        assert [e.step for e in acc.Images(f"surface/{row['run']}")] == [0, 1]    # redrawn with the partner
        for name in (f"{row['run']}_density.png", f"{row['run']}_surface.png"):
            assert os.path.getsize(os.path.join(logdir, "png", name)) > 0
    a, b = RUNS
    start = load_events(os.path.join(logdir, a))
    raw = start.Scalars(f"pair/{tb.pair_name(b)}")
    for kind in ("aligned", "aligned_weight", "aligned_activation", "bezier"):
        path = start.Scalars(f"{tb.path_group(kind)}/{tb.pair_name(b)}")
        assert [e.step for e in path] == [e.step for e in raw]
    bezier = start.Scalars(f"pair_bezier/{tb.pair_name(b)}")
    ends = [1, 5]                                               # alpha 0 and 1 on the 5-point grid's path
    np.testing.assert_allclose([bezier[i].value for i in ends], [raw[i].value for i in ends], rtol=1e-6)
    back = load_events(os.path.join(logdir, b)).Scalars(f"pair_bezier/{tb.pair_name(a)}")   # the way back, reversed
    np.testing.assert_allclose([e.value for e in back], [e.value for e in bezier][::-1], rtol=1e-6)
    cross = load_events(os.path.join(logdir, tb.CROSS))
    pair = f"{a}_{b}"
    assert "custom_scalars__config__" in cross.Tags()["tensors"]
    assert f"paths/{pair}" in cross.Tags()["images"]
    assert os.path.getsize(os.path.join(logdir, "png", f"pair_{pair}.png")) > 0


def test_both_curvature_backends_give_the_same_extremes():
    state = manual.build(arch_of(CFG), init="kaiming_normal", seed=4, dtype="float64").state_dict()
    found = {backend: jobs.curvatures(CFG, {"final": state}, spread.Settings(
        eval_samples=SAMPLES, curvature_samples=SAMPLES, curvature_backend=backend))["final"]
             for backend in curvature.BACKENDS}
    scale = abs(found["manual"]["lambda_max"]) + abs(found["manual"]["lambda_min"])
    for key in ("lambda_max", "lambda_min"):
        assert abs(found["manual"][key] - found["torch"][key]) <= CURVATURE_EIGEN * scale
    np.testing.assert_allclose(found["manual"]["hutchinson"]["trace"], found["torch"]["hutchinson"]["trace"],
                               rtol=HVP_AGREE, atol=0)


def test_a_point_off_the_plane_projects_to_its_coordinates_and_reports_how_far_off_it_is():
    centre = {"w": np.zeros((2, 3)), "b": np.zeros(2)}
    d1 = {"w": np.array([[1.0, 0, 0], [0, 0, 0]]), "b": np.array([0.0, 1.0])}
    d2 = {"w": np.array([[0, 2.0, 0], [0, 0, 0]]), "b": np.zeros(2)}
    point = {"w": 0.3 * d1["w"] - 0.2 * d2["w"] + np.array([[0, 0, 0], [0, 0, 0.5]]), "b": 0.3 * d1["b"]}
    coords, off = partners.project(centre, [d1, d2], point)
    np.testing.assert_allclose(coords, [0.3, -0.2], **ROUNDING_F64)
    distance = np.sqrt(0.3 ** 2 * 2 + 0.4 ** 2 + 0.5 ** 2)
    np.testing.assert_allclose(off, 0.5 / distance, **ROUNDING_F64)


def test_aligning_back_undoes_the_permutation():
    state = manual.build(arch_of(CFG), init="kaiming_normal", seed=2, dtype="float64").state_dict()
    moved = align.permute(state, arch_of(CFG), SWAP)
    back = partners.aligned_partners(arch_of(CFG), {"a": moved, "b": state}, {("a", "b"): SWAP})["b"]["a"]
    assert all(np.array_equal(back[k], state[k]) for k in state)


@pytest.mark.parametrize("argv, message", [
    (["--curvature-samples", "-1"], "--curvature-samples must be >= 0"),
    (["--bezier-steps", "-2"], "--bezier-steps must be >= 0"),
    (["--align", "rotation"], "--align"),
    (["--curvature-backend", "jax"], "--curvature-backend"),
])
def test_bad_new_flags_fail_on_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1, err


def test_help_explains_the_new_flags(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for flag in ("--curvature-samples", "--curvature-backend", "--align", "--bezier-steps"):
        assert flag in out
