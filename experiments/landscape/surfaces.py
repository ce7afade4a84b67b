"""The landscape measurements: 1-D paths, 2-D surfaces, the PCA plane of a trajectory, sharpness, distances."""
import numpy as np

from experiments.landscape.directions import difference, flatten, random_directions, unflatten

SURFACE_SEED = 2018    # mixed with the run's seed for the surface's two random directions
SHARPNESS_SEED = 2017  # mixed with the run's seed for the sharpness directions


def path_alphas(steps, extend=0.25):
    """steps + 1 points from 0 to 1 (both exact), plus round(extend * steps) more past each end."""
    more = round(extend * steps)
    return np.arange(-more, steps + more + 1) / steps


def axis(span, resolution):
    """resolution points over [-span, span]; the middle one is exactly 0 (resolution is odd)."""
    if resolution < 3 or resolution % 2 == 0:
        raise ValueError(f"resolution must be an odd number >= 3 (so the grid has a centre), got {resolution}")
    return (np.arange(resolution) - resolution // 2) * (2 * span / (resolution - 1))


def plane(xs, ys):
    """Grid coordinates (len(xs) * len(ys), 2), x varying slowest, for a loss array of shape (len(xs), len(ys))."""
    return np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)


def interpolate(evaluate, start, end, alphas, progress=None):
    """Loss and accuracy on start + alpha (end - start): {"alpha", "loss", "accuracy"}."""
    loss, acc = evaluate(start, [difference(end, start)], alphas[:, None], progress)
    return {"alpha": alphas, "loss": loss, "accuracy": acc}


def barrier(path):
    """Max loss on the segment 0 <= alpha <= 1 minus the mean of the two end losses."""
    a, loss = path["alpha"], path["loss"]
    ends = (loss[a == 0][0] + loss[a == 1][0]) / 2
    return float(loss[(a >= 0) & (a <= 1)].max() - ends)


def random_surface(evaluate, centre, seed, span, resolution, bias="zero", progress=None):
    """Loss and accuracy on a resolution^2 grid over [-span, span]^2 of two filter-normalised directions."""
    dirs = random_directions(centre, 2, seed=[seed, SURFACE_SEED], bias=bias)
    xs = ys = axis(span, resolution)
    loss, acc = evaluate(centre, dirs, plane(xs, ys), progress)
    shape = (len(xs), len(ys))
    return {"x": xs, "y": ys, "loss": loss.reshape(shape), "accuracy": acc.reshape(shape)}


def pca_plane(snapshots):
    """The two leading principal directions of the snapshots (unit vectors, as state dicts), their explained
    variance ratios, and every snapshot's coordinates relative to the last one (T, 2)."""
    final = flatten(snapshots[-1]).astype(np.float64)
    rows = np.stack([flatten(s).astype(np.float64) - final for s in snapshots])      # (T, P)
    centred = rows[:-1] - rows[:-1].mean(axis=0)                                        # (T-1, P)
    eigval, eigvec = np.linalg.eigh(centred @ centred.T)                                # ascending
    if len(snapshots) < 4 or eigval[-2] <= eigval[-1] * 1e-12:
        raise ValueError(f"the PCA plane needs a trajectory spanning two dimensions; "
                         f"got {len(snapshots)} snapshots")
    top = eigvec[:, ::-1][:, :2]                                                        # (T-1, 2)
    dirs = (centred.T @ top) / np.sqrt(eigval[::-1][:2])                                # (P, 2), unit columns
    path = rows @ dirs                                                                  # (T, 2)
    dirs *= np.where(path[0] < 0, -1, 1)                                                # the start on the + side
    path = rows @ dirs
    explained = eigval[::-1][:2] / eigval.sum()
    return [unflatten(d, snapshots[-1]) for d in dirs.T], explained, path


def pca_surface(evaluate, snapshots, resolution, margin=0.25, progress=None):
    """Loss on the PCA plane of the trajectory around the final weights, the projected path drawn on it."""
    dirs, explained, path = pca_plane(snapshots)
    lo, hi = path.min(axis=0), path.max(axis=0)
    pad = margin * (hi - lo)
    xs, ys = (np.linspace(lo[i] - pad[i], hi[i] + pad[i], resolution) for i in range(2))
    loss, acc = evaluate(snapshots[-1], dirs, plane(xs, ys), progress)
    shape = (len(xs), len(ys))
    return {"x": xs, "y": ys, "loss": loss.reshape(shape), "accuracy": acc.reshape(shape),
            "path": path, "explained": explained}


def sharpness(evaluate, centre, centre_loss, seed, radius, count, bias="zero", progress=None):
    """Mean loss rise at +-radius along count filter-normalised random directions (one evaluate call)."""
    dirs = random_directions(centre, count, seed=[seed, SHARPNESS_SEED], bias=bias)
    eye = np.eye(count)
    loss, _ = evaluate(centre, dirs, np.concatenate([radius * eye, -radius * eye]), progress)
    return float(loss.mean() - centre_loss)


def distance(a, b):
    """Euclidean distance between two state dicts."""
    return float(np.linalg.norm(flatten(a).astype(np.float64) - flatten(b).astype(np.float64)))


def path_length(snapshots):
    """Sum of the Euclidean steps between consecutive snapshots."""
    return sum(distance(a, b) for a, b in zip(snapshots[:-1], snapshots[1:]))


def points(resolution, alphas, sharpness_count):
    """How many grid points one run evaluates (for the progress bar)."""
    return len(alphas) + 2 * resolution ** 2 + 2 * sharpness_count + 1
