"""Where a solution's aligned partners lie relative to the planes of its contour figures."""
import numpy as np

from experiments.landscape.align import permute

ON_PLANE = 0.25   # a partner is drawn on a plane when its distance off the plane is at most this fraction of its
                  # distance from the centre (the plane holds >= 1 - 0.25^2 = 94% of the squared distance)


def _vector(state, keys):
    """state's tensors laid end to end in the order of keys, as float64."""
    return np.concatenate([np.ravel(state[k]) for k in keys]).astype(np.float64)


def project(centre, directions, point):
    """(coords (2,), off): the least-squares coordinates of point - centre on the two directions, and the norm of
    the part the plane leaves over relative to the norm of point - centre (0: on the plane; 1: orthogonal to it)."""
    delta = _vector(point, centre) - _vector(centre, centre)                       # (P,)
    basis = np.stack([_vector(d, centre) for d in directions], axis=1)               # (P, 2)
    coords = np.linalg.lstsq(basis, delta, rcond=None)[0]                            # (2,)
    length = np.linalg.norm(delta)
    off = np.linalg.norm(delta - basis @ coords) / length if length > 0 else 0.0
    return coords, float(off)


def inverse(perms):
    """The permutations that undo perms."""
    return [np.argsort(p) for p in perms]


def aligned_partners(arch, finals, perms):
    """{run: {partner: the partner's solution aligned to run's}} from {(a, b): b's permutations onto a}: b aligned
    to a is b permuted by them, and a aligned to b is a permuted by their inverses (a relabelling is an isometry)."""
    out = {run: {} for run in finals}
    for (a, b), p in perms.items():
        out[a][b] = permute(finals[b], arch, p)
        out[b][a] = permute(finals[a], arch, inverse(p))
    return out


def positions(planes, centre, partners):
    """{kind: {partner: (coords (2,), off)}} of each aligned partner on each of the run's planes
    ({kind: (surface, directions)})."""
    return {kind: {name: project(centre, directions, state) for name, state in partners.items()}
            for kind, (_, directions) in planes.items()}
