"""Conv2d (im2col and one GEMM) and MaxPool2d (tiles or strided windows), NCHW in and out.

Both keep activations batch-innermost in memory, (C, H, W, N), and return an NCHW-shaped view of it:
each window copy then moves runs of OW*N contiguous numbers, W (C_out, C*k*k) @ cols (C*k*k, OH*OW*N)
writes its output straight in that layout with torch's weight as it is, and a ReLU between runs contiguously.
"""
import numpy as np

from manual.layers import Layer


def _windows(x, k, s, oh, ow):
    """Each kernel offset (i, j) with its view of every window: x[:, i + s*r, j + s*q] for r < oh, q < ow."""
    for i in range(k):
        for j in range(k):
            yield i, j, x[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s]


class Conv2d(Layer):
    """Cross-correlation like torch's: out[n, o, r, q] = b[o] + sum_c,i,j W[o, c, i, j] x[n, c, s*r + i, s*q + j]."""

    def __init__(self, spec, dtype):
        super().__init__(spec, dtype)
        c, o, k = spec.in_channels, spec.out_channels, spec.kernel_size
        self.params = {"weight": np.zeros((o, c, k, k), self.dtype), "bias": np.zeros(o, self.dtype)}
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.rgrads = {name: np.zeros_like(p) for name, p in self.params.items()}

    def forward(self, x):
        s = self.spec
        k, st, p = s.kernel_size, s.stride, s.padding
        self.check(x)
        if x.ndim != 4 or x.shape[1] != s.in_channels or min(x.shape[2:]) + 2 * p < k:
            raise ValueError(f"{self.name} expects input of shape (N, {s.in_channels}, H, W) with "
                             f"H, W >= {k - 2 * p}, got {x.shape}")
        self.x_shape, (h, w) = x.shape, x.shape[2:]
        self.out_hw = (h + 2 * p - k) // st + 1, (w + 2 * p - k) // st + 1
        self.cols = self._im2col(x)                                      # (K, M)
        out = self.params["weight"].reshape(s.out_channels, -1) @ self.cols   # (C_out, M)
        out += self.params["bias"][:, None]
        return self._nchw(out)                                           # (N, C_out, OH, OW)

    def backward(self, dout, input_grad=True):
        d = self._rows(dout)                                             # (C_out, M)
        o = len(d)
        self.grads["weight"].reshape(o, -1)[...] = (self.cols @ d.T).T   # (C_out, K); BLAS runs cols @ d^T faster
        np.sum(d, axis=1, out=self.grads["bias"])                        # (C_out,)
        if not input_grad:
            return None
        return self._col2im(self.params["weight"].reshape(o, -1).T @ d)  # (N, C, H, W)

    def rforward(self, rx, v):
        """im2col makes it Linear's case: R{W cols + b} = W R{cols} + V cols + V_b, R{cols} = im2col(R{x})."""
        o = self.spec.out_channels
        self.rcols, self.v = None if rx is None else self._im2col(rx), v   # (K, M)
        rout = v["weight"].reshape(o, -1) @ self.cols                    # (C_out, M)
        if self.rcols is not None:
            rout += self.params["weight"].reshape(o, -1) @ self.rcols
        rout += v["bias"][:, None]
        return self._nchw(rout)                                          # (N, C_out, OH, OW)

    def rbackward(self, dout, rdout, input_grad=True):
        """Linear's R-backward on the columns: R{dW} = R{δ} cols^T + δ R{cols}^T, R{dcols} = W^T R{δ} + V^T δ."""
        d, rd = self._rows(dout), self._rows(rdout)                      # (C_out, M) each
        o = len(d)
        rw = (self.cols @ rd.T).T                                        # (C_out, K)
        if self.rcols is not None:
            rw += (self.rcols @ d.T).T
        self.rgrads["weight"].reshape(o, -1)[...] = rw
        np.sum(rd, axis=1, out=self.rgrads["bias"])                      # (C_out,)
        if not input_grad:
            return None, None
        w = self.params["weight"].reshape(o, -1)
        rdcols = w.T @ rd                                                # (K, M)
        rdcols += self.v["weight"].reshape(o, -1).T @ d
        return self._col2im(w.T @ d), self._col2im(rdcols)

    def _im2col(self, x):
        """(K, M) columns of x (N, C, H, W): row (c, i, j), column (r, q, n) holds x[n, c, s*r + i - p, s*q + j - p]."""
        k, st, p = self.spec.kernel_size, self.spec.stride, self.spec.padding
        (n, c, h, w), (oh, ow) = self.x_shape, self.out_hw
        xp = np.zeros((c, h + 2 * p, w + 2 * p, n), self.dtype)          # (C, H+2p, W+2p, N), contiguous
        xp[:, p:p + h, p:p + w] = x.transpose(1, 2, 3, 0)
        cols = np.empty((c, k, k, oh, ow, n), self.dtype)                # (C, k, k, OH, OW, N)
        for i, j, win in _windows(xp, k, st, oh, ow):
            cols[:, i, j] = win
        return cols.reshape(c * k * k, -1)                               # (K, M)

    def _col2im(self, dcols):
        """The adjoint of _im2col: (K, M) -> (N, C, H, W), each column added back to the window it came from."""
        k, st, p = self.spec.kernel_size, self.spec.stride, self.spec.padding
        (n, c, h, w), (oh, ow) = self.x_shape, self.out_hw
        dcols = dcols.reshape(c, k, k, oh, ow, n)
        dxp = np.zeros((c, h + 2 * p, w + 2 * p, n), self.dtype)         # (C, H+2p, W+2p, N)
        for i, j, win in _windows(dxp, k, st, oh, ow):
            win += dcols[:, i, j]
        return dxp[:, p:p + h, p:p + w].transpose(3, 0, 1, 2)            # (N, C, H, W)

    def _nchw(self, out):
        """(C_out, M) as the (N, C_out, OH, OW) view of its batch-innermost layout."""
        return out.reshape(self.spec.out_channels, *self.out_hw, -1).transpose(3, 0, 1, 2)

    def _rows(self, dout):
        """(N, C_out, OH, OW) -> (C_out, M), a view when dout is batch-innermost."""
        return dout.transpose(1, 2, 3, 0).reshape(self.spec.out_channels, -1)


class MaxPool2d(Layer):
    """Window maxima; each window's gradient goes to its first maximum in row-major order, like torch's."""

    def __init__(self, spec, dtype):
        super().__init__(spec, dtype)
        self.k = spec.kernel_size
        self.s = spec.kernel_size if spec.stride is None else spec.stride

    def forward(self, x):
        k, s = self.k, self.s
        self.check(x)
        if x.ndim != 4 or min(x.shape[2:]) < k:
            raise ValueError(f"{self.name} expects input of shape (N, C, H, W) with H, W >= {k}, got {x.shape}")
        n, c, h, w = x.shape
        oh, ow = (h - k) // s + 1, (w - k) // s + 1
        self.x_shape = x.shape
        xc = x.transpose(1, 2, 3, 0)                                     # (C, H, W, N)
        out = self._tiles_forward(xc, oh, ow) if s == k else self._windows_forward(xc, oh, ow)
        return out.transpose(3, 0, 1, 2)                                 # (N, C, OH, OW)

    def backward(self, dout, input_grad=True):
        if not input_grad:
            return None
        n, c, h, w = self.x_shape
        d = dout.transpose(1, 2, 3, 0)                                   # (C, OH, OW, N)
        dx = np.zeros((c, h, w, n), self.dtype)                          # (C, H, W, N)
        if self.s == self.k:
            np.multiply(d[:, :, None, :, None], self.first, out=self._tiles(dx, *d.shape[1:3]))
        else:
            hit = np.empty(d.shape, bool)
            for i, j, win in _windows(dx, self.k, self.s, *d.shape[1:3]):
                win += d * np.equal(self.idx, i * self.k + j, out=hit)
        return dx.transpose(3, 0, 1, 2)                                  # (N, C, H, W)

    def rforward(self, rx, v):
        """Routing fixed by forward's maxima: R{out} = R{x} at each window's first maximum."""
        n, c, h, w = self.x_shape
        oh, ow = (h - self.k) // self.s + 1, (w - self.k) // self.s + 1
        rxc = rx.transpose(1, 2, 3, 0)                                   # (C, H, W, N)
        if self.s == self.k:
            rout = (self._tiles(rxc, oh, ow) * self.first).sum(axis=(2, 4))   # one nonzero per window: exact
        else:
            rout = np.zeros((c, oh, ow, n), self.dtype)                  # (C, OH, OW, N)
            for i, j, win in _windows(rxc, self.k, self.s, oh, ow):
                rout += win * (self.idx == i * self.k + j)
        return rout.transpose(3, 0, 1, 2)                                # (N, C, OH, OW)

    def rbackward(self, dout, rdout, input_grad=True):
        """Linear routing, no second-order term: R{dx} routes R{dout} like dout."""
        return (self.backward(dout), self.backward(rdout)) if input_grad else (None, None)

    def _tiles(self, xc, oh, ow):
        """Non-overlapping windows as a view (C, OH, k, OW, k, N); rows and columns past the last window dropped."""
        k = self.k
        return xc[:, :oh * k, :ow * k].reshape(xc.shape[0], oh, k, ow, k, xc.shape[3])

    def _tiles_forward(self, xc, oh, ow):
        """stride == kernel: maxima over the tiles; self.first marks each tile's first maximum."""
        k = self.k
        tiles = self._tiles(xc, oh, ow)                                  # (C, OH, k, OW, k, N)
        out = tiles[:, :, 0, :, 0].copy()                                # (C, OH, OW, N)
        for i in range(k):
            for j in range(k):
                np.maximum(out, tiles[:, :, i, :, j], out=out)
        self.first = np.equal(tiles, out[:, :, None, :, None])          # every maximum, ties included
        taken = np.zeros(out.shape, bool)
        for i in range(k):
            for j in range(k):
                hit = self.first[:, :, i, :, j]
                np.greater(hit, taken, out=hit)                          # a maximum, and none earlier
                taken |= hit
        return out

    def _windows_forward(self, xc, oh, ow):
        """Any stride: running maxima over the kernel offsets; self.idx is each window's first argmax."""
        k = self.k
        wins = _windows(xc, k, self.s, oh, ow)
        out = next(wins)[2].copy()                                       # (C, OH, OW, N)
        self.idx = np.zeros(out.shape, np.uint8 if k * k < 256 else np.int32)
        better = np.empty(out.shape, bool)
        for i, j, win in wins:
            np.greater(win, out, out=better)                             # strict: the first maximum stays
            np.maximum(out, win, out=out)
            np.maximum(self.idx, better * self.idx.dtype.type(i * k + j), out=self.idx)   # offsets only grow
        return out
