"""TensorBoard records of the landscapes: path scalars, surface meshes, contour figures (also as PNGs), hparams."""
import math
import os

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from experiments.events import add_session

MAX_FACES = 65_536     # TensorBoard's mesh viewer limit
MESH_HEIGHT = 0.8      # the mesh's loss axis spans [0, MESH_HEIGHT] over a [-1, 1]^2 plane: the bowl stands out
MESH_CONFIG = {        # three.js settings of TensorBoard's mesh viewer (y is up): a view from above one corner
    "camera": {"cls": "PerspectiveCamera", "fov": 50, "position": [1.9, 2.0, 2.6], "lookAt": [0, 0, 0]},
    "lights": [{"cls": "AmbientLight", "color": "#ffffff", "intensity": 0.8},
               {"cls": "DirectionalLight", "color": "#ffffff", "intensity": 0.6, "position": [1, 3, 2]}],
    "material": {"cls": "MeshStandardMaterial", "roughness": 1, "metalness": 0, "side": 2},   # 2: both sides
}
ZMAX = 10.0            # losses above this are drawn at this height / in the top colour (Li et al. 2018 clip at 10)
LOSS_FLOOR = 1e-4      # the smallest loss the log scales (mesh height, contour colours) show
CROSS = "cross_init"   # the run holding the results across initializations
HPARAMS_METRICS = ("final_loss", "final_accuracy", "test_loss", "test_accuracy", "sharpness", "distance",
                   "worst_barrier")   # a landscape run's columns in the hparams table (accuracies in percent)


def writer(logdir, run):
    """A SummaryWriter for one run under logdir."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(os.path.join(logdir, run))


def alpha_text(alphas):
    """A markdown table step -> alpha, for the run's text tab."""
    rows = "\n".join(f"| {i} | {a:+.4f} |" for i, a in enumerate(alphas))
    return f"Step = index into the alpha grid; weights = start + alpha (end - start).\n\n| step | alpha |\n|---|---|\n{rows}"


def add_path(w, group, name, path):
    """One scalar per alpha of a 1-D path, step = index: loss as <group>/<name>, accuracy (%) as
    <group>_accuracy/<name>."""
    for i, (loss, acc) in enumerate(zip(path["loss"], path["accuracy"])):
        w.add_scalar(f"{group}/{name}", loss, i)
        w.add_scalar(f"{group}_accuracy/{name}", 100 * acc, i)


def mesh_arrays(surface, zmax=ZMAX):
    """(vertices (1, V, 3), colours (1, V, 3) uint8, faces (1, F, 3)) of a surface, F < MAX_FACES, for a viewer
    whose y axis is up: x and z = the plane's two axes scaled to [-1, 1] (the square of the contour figure),
    y = the log of the loss clipped at zmax, scaled to [0, MESH_HEIGHT]; the colour follows it (viridis), as the
    contour figure's log colour scale does."""
    nx, ny = surface["loss"].shape
    stride = 1
    while 2 * math.ceil((nx - 1) / stride) * math.ceil((ny - 1) / stride) >= MAX_FACES:
        stride += 1
    ix, iy = np.unique(np.r_[0:nx:stride, nx - 1]), np.unique(np.r_[0:ny:stride, ny - 1])
    z = np.log(np.clip(surface["loss"][np.ix_(ix, iy)], LOSS_FLOOR, zmax))                # (nx', ny')
    height = (z - z.min()) / max(z.max() - z.min(), 1e-12)                           # (nx', ny') in [0, 1]
    gx, gy = np.meshgrid(unit(surface["x"][ix]), unit(surface["y"][iy]), indexing="ij")
    vertices = np.stack([gx, MESH_HEIGHT * height, -gy], axis=-1).reshape(1, -1, 3).astype(np.float32)
    colours = (colormaps["viridis"](height.ravel())[:, :3] * 255).astype(np.uint8)[None]
    k = np.arange(len(ix) * len(iy)).reshape(len(ix), len(iy))
    a, b, c, d = k[:-1, :-1].ravel(), k[1:, :-1].ravel(), k[:-1, 1:].ravel(), k[1:, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])[None].astype(np.int32)
    return vertices, colours, faces


def unit(values):
    """values mapped linearly onto [-1, 1]."""
    return 2 * (values - values.min()) / max(values.max() - values.min(), 1e-12) - 1


def contour_figure(surface, title, xlabel, ylabel, path=None, zmax=ZMAX):
    """A filled contour plot of a surface's loss (log colour scale), the solution starred, a path drawn on."""
    fig = Figure(figsize=(6, 5), dpi=100)
    ax = fig.add_subplot()
    loss = np.minimum(surface["loss"], zmax).T                                          # (ny, nx) for contourf
    lo = max(float(loss.min()), LOSS_FLOOR)
    levels = np.geomspace(lo, max(float(loss.max()), lo * 1.01), 25)
    filled = ax.contourf(surface["x"], surface["y"], np.maximum(loss, lo), levels=levels, norm=LogNorm(), cmap="viridis")
    ax.contour(surface["x"], surface["y"], np.maximum(loss, lo), levels=levels[::3], colors="white",
               linewidths=0.5, alpha=0.6)
    fig.colorbar(filled, ax=ax, label=f"test loss (clipped at {zmax:g})", format="%.3g")
    if path is not None:
        ax.plot(path[:, 0], path[:, 1], "-o", color="tab:red", markersize=3, linewidth=1.5, label="trajectory")
        ax.annotate("init", path[0], color="tab:red", xytext=(4, 4), textcoords="offset points")
    ax.plot([0], [0], "*", color="white", markeredgecolor="black", markersize=14, linestyle="none", label="solution")
    ax.legend(loc="lower right")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.tight_layout()
    return fig


def add_surface(w, tag, surface, figure, png):
    """A surface as a mesh and a contour figure, the figure also saved as png."""
    vertices, colours, faces = mesh_arrays(surface)
    w.add_mesh(tag, vertices=vertices, colors=colours, faces=faces, config_dict=MESH_CONFIG)
    os.makedirs(os.path.dirname(png), exist_ok=True)
    figure.savefig(png)
    w.add_figure(tag, figure)


def write_run(logdir, run, result):
    """Everything one (scheme, seed) run logs; returns the PNG paths."""
    pngs = {kind: os.path.join(logdir, "png", f"{run}_{kind}.png") for kind in ("surface", "pca")}
    with writer(logdir, run) as w:
        add_path(w, "landscape", "interp_init_final", result["interp"])
        w.add_text("landscape/alpha_grid", alpha_text(result["interp"]["alpha"]))
        surf = result["surface"]
        add_surface(w, f"surface/{run}", surf,
                    contour_figure(surf, f"{run}: random filter-normalised plane", "alpha (direction 1)",
                                   "beta (direction 2)"), pngs["surface"])
        if result.get("pca"):
            pca = result["pca"]
            x, y = (f"PC{i + 1} ({100 * e:.1f}% of variance)" for i, e in enumerate(pca["explained"]))
            add_surface(w, f"pca_surface/{run}", pca,
                        contour_figure(pca, f"{run}: trajectory on its PCA plane", x, y, path=pca["path"]),
                        pngs["pca"])
        else:
            del pngs["pca"]
            w.add_text(f"pca_surface/{run}", result["pca_skipped"])
        for when in ("init", "final"):
            for name, value in result[when].items():
                w.add_histogram(f"weights_{when}/{name}", value, 0)
    return pngs


def pair_name(b):
    """The name (tag pair/<name>, in run a) of the path from a's solution to b's: short enough for a card title,
    and one card per solution b gathers the paths from every other one (the run's colour says which)."""
    return f"to_{b}"


def table(rows):
    """A markdown table of the run summaries, accuracies in percent."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(cell(k, v) for k, v in row.items()) + " |")
    return "\n".join(lines)


def cell(key, value):
    """One table cell: an accuracy (a fraction) in percent, another float to 4 significant digits."""
    if key.endswith("accuracy"):
        return f"{100 * value:.2f}%"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_cross(logdir, pairs, rows, alphas):
    """The paths between solutions, both ways, in the runs they start from (alpha 0 = the run's own solution; the
    grid is symmetric about 1/2, so the way back is the path reversed); the 'cross_init' run: the alpha grid and
    the runs table."""
    starts = {}
    for (a, b), path in pairs.items():
        starts.setdefault(a, {})[b] = path
        starts.setdefault(b, {})[a] = {"loss": path["loss"][::-1], "accuracy": path["accuracy"][::-1]}
    for run, ends in starts.items():
        with writer(logdir, run) as w:
            for b, path in ends.items():
                add_path(w, "pair", pair_name(b), path)
    with writer(logdir, CROSS) as w:
        w.add_text("landscape/alpha_grid", alpha_text(alphas))
        w.add_text("landscape/runs", table(rows))


def write_hparams(logdir, run, hparams, metrics):
    """The run's row of the hparams table: hparams, and metrics as hparams/<name> scalars (events.add_session)."""
    with writer(logdir, run) as w:
        add_session(w, hparams, {k: 100 * v if k.endswith("accuracy") else v for k, v in metrics.items()}, 0)
