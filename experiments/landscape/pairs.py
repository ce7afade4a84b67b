"""A pair of solutions: the barriers along its paths, and the paths with their legends as the figures show them."""
from experiments.landscape import surfaces

LABELS = {"": "straight", "aligned_weight": "straight, aligned by weight matching",
          "aligned_activation": "straight, aligned by activation matching",
          "bezier": "quadratic Bezier curve (trained bend)"}   # legends of a pair's paths


def barriers(paths):
    """A pair's barriers: raw, aligned (the lower over the alignments tried, and by which), per alignment when
    there are two, and along the Bezier curve. paths: {"raw", "weight", "activation", "bezier": path}."""
    out = {"barrier": surfaces.barrier(paths["raw"])}
    aligned = {m: surfaces.barrier(paths[m]) for m in ("weight", "activation") if m in paths}
    if aligned:
        best = min(aligned, key=aligned.get)
        out.update({"barrier_aligned": aligned[best], "aligned_by": best})
        if len(aligned) > 1:
            out.update({f"barrier_aligned_{m}": v for m, v in aligned.items()})
    if "bezier" in paths:
        out["barrier_bezier"] = surfaces.barrier(paths["bezier"])
    return out


def legends(paths, found):
    """{tag kind: (legend, path)} of a pair with barriers found: "" raw, "aligned" the better alignment,
    "aligned_<method>" each alignment when there are two, "bezier"."""
    out = {"": (LABELS[""], paths["raw"])}
    if "aligned_by" in found:
        best = found["aligned_by"]
        out["aligned"] = (LABELS[f"aligned_{best}"], paths[best])
        if "barrier_aligned_weight" in found:
            out.update({f"aligned_{m}": (LABELS[f"aligned_{m}"], paths[m]) for m in ("weight", "activation")})
    if "bezier" in paths:
        out["bezier"] = (LABELS["bezier"], paths["bezier"])
    return out
