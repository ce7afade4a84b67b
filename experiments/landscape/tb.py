"""TensorBoard records of the landscapes: path scalars, surface meshes, contour figures (also as PNGs), hparams."""
import io
import math
import os
import re

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullLocator

from experiments.events import EventWriter, add_session
from experiments.io import write_atomic
from experiments.landscape.partners import ON_PLANE

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
    """An event writer for one run under logdir."""
    return EventWriter(os.path.join(logdir, run))


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
    w.add_mesh(tag, vertices, colours, faces, MESH_CONFIG)
    w.add_image(tag, save_png(figure, png))


def save_png(figure, png):
    """figure rendered once as PNG, written to the file png atomically (a full disk leaves no 0-byte PNG); the
    PNG's bytes, for the TensorBoard image."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_atomic(png, buffer.getvalue())
    return buffer.getvalue()


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
    write_both_ways(logdir, "pair", pairs)
    with writer(logdir, CROSS) as w:
        w.add_text("landscape/alpha_grid", alpha_text(alphas))
        w.add_text("landscape/runs", table(rows))


def write_hparams(logdir, run, hparams, metrics):
    """The run's row of the hparams table: hparams, and metrics as hparams/<name> scalars (events.add_session)."""
    with writer(logdir, run) as w:
        add_session(w, hparams, {k: 100 * v if k.endswith("accuracy") else v for k, v in metrics.items()}, 0)


BARRIER = "barrier = highest loss on the path minus the mean of its two ends"
CURVATURE_STEPS = ("init", "final")   # the step of each curvature summary's scalars
DENSITY_FLOOR = 1e-8                  # the density plot's lowest value, relative to its peak (log axis)


def write_curvature(logdir, run, found):
    """The Hessian's λ_max, λ_min and trace (with its 95% interval) as scalars curvature/<name> at step 0 (initial
    weights) and 1 (solution), and the SLQ spectral densities as one figure (also LOGDIR/png/<run>_density.png)."""
    png = os.path.join(logdir, "png", f"{run}_density.png")
    fig = Figure(figsize=(5 * len(found), 4), dpi=100)
    with writer(logdir, run) as w:
        for ax, (name, s) in zip(fig.subplots(1, len(found), squeeze=False)[0], found.items()):
            step, (low, high) = CURVATURE_STEPS.index(name), s["hutchinson"]["ci"]
            for tag, value in (("lambda_max", s["lambda_max"]), ("lambda_min", s["lambda_min"]),
                               ("trace", s["hutchinson"]["trace"]), ("trace_ci_low", low), ("trace_ci_high", high)):
                w.add_scalar(f"curvature/{tag}", value, step)
            grid, density = s["slq"]["grid"], s["slq"]["density"]
            ax.semilogy(grid, np.maximum(density, DENSITY_FLOOR * density.max()), color="tab:blue")
            ax.yaxis.set_major_locator(LogLocator(numticks=5))             # few log ticks: drawing them is slow
            ax.yaxis.set_minor_locator(NullLocator())
            ax.set(title=f"{name}: λ_max {s['lambda_max']:.3g}, λ_min {s['lambda_min']:.3g}\n"
                         f"trace {s['hutchinson']['trace']:.3g} ± {(high - low) / 2:.2g} (95%)",
                   xlabel="eigenvalue of the Hessian", ylabel="density (SLQ)")
        fig.suptitle(f"{run}: Hessian spectral density")
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.78, wspace=0.25)
        w.add_image("curvature/density", save_png(fig, png))
    return png


def write_both_ways(logdir, group, pairs):
    """Each path between two solutions as scalars <group>/to_<b> in run a and, reversed, <group>/to_<a> in run b
    (alpha 0 = the run's own solution; the grid is symmetric about 1/2, so the way back is the path reversed)."""
    starts = {}
    for (a, b), path in pairs.items():
        starts.setdefault(a, {})[b] = path
        starts.setdefault(b, {})[a] = {"loss": path["loss"][::-1], "accuracy": path["accuracy"][::-1]}
    for run, ends in starts.items():
        with writer(logdir, run) as w:
            for b, path in ends.items():
                add_path(w, group, pair_name(b), path)


def path_group(kind):
    """The tag group of a pair's path of one kind ("" raw, "aligned", "bezier", ...): pair, pair_aligned, ..."""
    return f"pair_{kind}" if kind else "pair"


def barrier_text(barriers):
    """A markdown table of every pair's barriers, with their definition."""
    keys = list(next(iter(barriers.values())))
    lines = [f"{BARRIER}.", "", "| pair | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for (a, b), row in barriers.items():
        lines.append(f"| {a} / {b} | " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v)
                                                    for v in row.values()) + " |")
    return "\n".join(lines)


def pair_figure(a, b, paths):
    """All of a pair's paths ({kind: (legend, path)}: raw, aligned, Bezier...) in one chart against alpha."""
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    for label, path in paths.values():
        ax.plot(path["alpha"], path["loss"], "-o", markersize=3, label=label)
    ax.axvspan(0, 1, color="grey", alpha=0.08)
    ax.set(title=f"{a} -> {b}", xlabel="alpha (t along the curve)", ylabel="test loss")
    ax.legend()
    fig.text(0.01, 0.01, BARRIER, fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def shown(paths):
    """A pair's paths as its chart and figure show them: with both alignments, each by name and not "aligned"."""
    return {k: v for k, v in paths.items() if k != "aligned"} if "aligned_weight" in paths else paths


def draw_pair(logdir, a, b, paths):
    """The figure of a pair's paths ({kind: (legend, path)}) as LOGDIR/png/pair_<a>_<b>.png; its PNG bytes."""
    return save_png(pair_figure(a, b, shown(paths)), os.path.join(logdir, "png", f"pair_{a}_{b}.png"))


def write_pairs(logdir, pairs, barriers, pngs):
    """Every pair's aligned and Bezier paths as scalars beside the raw ones (pair_<kind>/to_<b> in run a, both ways),
    one custom-scalars chart per pair holding all its paths from a, its figure (drawn by draw_pair: pngs) in the
    'cross_init' run, and the barrier table there. pairs: {(a, b): {kind: (legend, path)}}, kind "" the raw path
    (already written by write_cross)."""
    kinds = {kind for paths in pairs.values() for kind in paths if kind}
    for kind in kinds:
        write_both_ways(logdir, path_group(kind), {ab: paths[kind][1] for ab, paths in pairs.items() if kind in paths})
    layout = {f"{a} -> {b}": [f"^{path_group(kind)}/{re.escape(pair_name(b))}$" for kind in shown(paths)]
              for (a, b), paths in pairs.items()}
    with writer(logdir, CROSS) as w:
        for a, b in pairs:
            w.add_image(f"paths/{a}_{b}", pngs[a, b])
        w.add_custom_scalars({"paths between solutions (from the first run of each pair)": layout})
        w.add_text("landscape/barriers", barrier_text(barriers))


def partner_figure(surface, title, xlabel, ylabel, where, path=None):
    """contour_figure with each aligned partner whose distance off the plane is at most partners.ON_PLANE of its
    distance drawn at its projection, the others listed as off-plane in the caption. where: {name: (coords, off)}."""
    fig = contour_figure(surface, title, xlabel, ylabel, path=path)
    ax = fig.axes[0]
    notes = []
    for name, (coords, off) in where.items():
        if off <= ON_PLANE:
            ax.plot(*coords, "D", markeredgecolor="black", markersize=8, linestyle="none", label=f"{name} (aligned)")
            inside = surface["x"][0] <= coords[0] <= surface["x"][-1] and surface["y"][0] <= coords[1] <= surface["y"][-1]
            notes.append(f"{name}: on-plane (off {off:.2f}){'' if inside else ', outside the grid'}")
        else:
            notes.append(f"{name}: off-plane (off {off:.2f})")
    ax.legend(loc="lower right", fontsize=7)
    fig.text(0.01, 0.01, "aligned partners - " + "; ".join(notes) +
             f"\n(off = distance off the plane / distance from the centre; drawn if <= {ON_PLANE})", fontsize=6,
             wrap=True)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def write_partners(logdir, run, planes, where):
    """The run's contour figures again, with its aligned partners (step 1 of the same tags; the PNGs replaced).
    planes: {kind: (surface, directions)}; where: {kind: {partner: (coords, off)}}."""
    tags = {"surface": (f"surface/{run}", "random filter-normalised plane", "alpha (direction 1)",
                        "beta (direction 2)"),
            "pca": (f"pca_surface/{run}", "trajectory on its PCA plane", "PC1", "PC2")}
    with writer(logdir, run) as w:
        for kind, (surface, _) in planes.items():
            tag, title, xlabel, ylabel = tags[kind]
            fig = partner_figure(surface, f"{run}: {title}", xlabel, ylabel, where[kind], path=surface.get("path"))
            w.add_image(tag, save_png(fig, os.path.join(logdir, "png", f"{run}_{kind}.png")), 1)
