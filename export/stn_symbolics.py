"""ONNX export of the spatial transformer below the opsets that have its operators, for TensorRT.

``torch.nn.functional.affine_grid`` has an ONNX symbolic only from opset 20 (the ``AffineGrid``
operator), which TensorRT 8.5/8.6 (JetPack 5 and 6.0) cannot parse: their ONNX parser stops at
opset 17. The grid is an affine map of a fixed pixel-centre lattice, so ``_affine_grid_generator``
writes it as ``MatMul(constant lattice (1, H*W, 3), transpose(theta) (N, 3, 2))`` reshaped to
``(N, H, W, 2)``: plain ops every TensorRT parses, exact to float rounding. From opset 16
``grid_sample`` exports natively as ``GridSample``, which TensorRT parses from 8.5.

TensorRT 8.0/8.2 (JetPack 4.6, the Jetson Nano's last JetPack) parse up to opset 13 and have no
``GridSample``. For an export at opset 13 to 15, ``_grid_sampler`` writes bilinear sampling with
zero padding out of opset-13 operators those versions parse: the four neighbours' flat indices
(``Floor``, ``Clip``, ``Cast``), ``GatherElements`` on the flattened image, and the bilinear
weights, with out-of-image neighbours weighted 0 (``Greater``/``Less``/``And``).

``register()`` installs both symbolics (idempotent); ``export.onnx_export`` calls it before
exporting. Crop height and width must be static (only the batch axis is dynamic).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.onnx import symbolic_helper

LEGACY_OPSET = 13  # TensorRT 8.0/8.2's newest; the opset-16 GridSample symbolic takes over from 16
_registered = False


def base_lattice(height: int, width: int, align_corners: bool) -> np.ndarray:
    """(1, H*W, 3) rows ``(x, y, 1)`` of the normalised sampling positions, rows in (y, x) order."""

    def axis(size: int) -> np.ndarray:
        if align_corners:
            return np.linspace(-1.0, 1.0, size) if size > 1 else np.zeros(1)
        return (2.0 * np.arange(size) + 1.0) / size - 1.0

    ys, xs = np.meshgrid(axis(height), axis(width), indexing="ij")
    rows = np.stack([xs.ravel(), ys.ravel(), np.ones(height * width)], axis=1)
    return rows[None].astype(np.float32)


def _static_dim(value: Any) -> int | None:
    """A traced size element as an int: a constant, or ``Gather(Shape(x), k)`` of a static axis of x."""
    constant = symbolic_helper._maybe_get_const(value, "i")
    if isinstance(constant, int):
        return constant
    node = value.node()
    if node.kind() != "onnx::Gather":
        return None
    shape, index = list(node.inputs())
    if shape.node().kind() != "onnx::Shape":
        return None
    axis = symbolic_helper._maybe_get_const(index, "i")
    sizes = symbolic_helper._get_tensor_sizes(next(iter(shape.node().inputs())))
    if not isinstance(axis, int) or sizes is None:
        return None
    dim = sizes[axis]
    return dim if isinstance(dim, int) else None


def _affine_grid_generator(g: Any, theta: Any, size: Any, align_corners: Any) -> Any:
    dims = [_static_dim(v) for v in symbolic_helper._unpack_list(size)]
    if len(dims) != 4 or dims[2] is None or dims[3] is None:
        raise torch.onnx.errors.SymbolicValueError(
            "affine_grid export needs a 4-D size with static height and width (only the batch may be dynamic)",
            theta,
        )
    height, width = int(dims[2]), int(dims[3])
    align = bool(symbolic_helper._maybe_get_const(align_corners, "b"))
    lattice = g.op("Constant", value_t=torch.from_numpy(base_lattice(height, width, align)))
    grid = g.op("MatMul", lattice, g.op("Transpose", theta, perm_i=[0, 2, 1]))
    shape = g.op("Constant", value_t=torch.tensor([-1, height, width, 2], dtype=torch.int64))
    return g.op("Reshape", grid, shape)


def _const(g: Any, values: Any, dtype: torch.dtype = torch.float32) -> Any:
    return g.op("Constant", value_t=torch.tensor(values, dtype=dtype))


def _grid_shape(grid: Any) -> list[int | None]:
    """The grid's (N, H_out, W_out, 2), from its type or, when the exporter's shape inference lost it,
    from the constant target shape of the ``Reshape`` that ``_affine_grid_generator`` ends with."""
    sizes = symbolic_helper._get_tensor_sizes(grid) or [None] * 4
    node = grid.node()
    if any(d is None for d in sizes[1:3]) and node.kind() == "onnx::Reshape":
        target = symbolic_helper._maybe_get_const(list(node.inputs())[1], "is")
        if isinstance(target, list) and len(target) == 4:
            return [None, *target[1:]]
    return list(sizes)


def _grid_sampler(g: Any, image: Any, grid: Any, mode: Any, padding: Any, align_corners: Any) -> Any:
    """Bilinear ``grid_sample`` with zero padding in opset-13 operators (see the module docstring)."""
    sizes, grid_sizes = symbolic_helper._get_tensor_sizes(image), _grid_shape(grid)
    if (symbolic_helper._maybe_get_const(mode, "i"), symbolic_helper._maybe_get_const(padding, "i")) != (0, 0):
        raise torch.onnx.errors.SymbolicValueError("only bilinear grid_sample with zero padding exports below "
                                                   "opset 16", image)
    static = [d for d in (*(sizes or [])[1:], *grid_sizes[1:3]) if isinstance(d, int)]
    if len(static) != 5:
        raise torch.onnx.errors.SymbolicValueError("grid_sample export below opset 16 needs static channel, "
                                                   "height and width", image)
    channels, height, width, out_height, out_width = static
    points = out_height * out_width
    align = bool(symbolic_helper._maybe_get_const(align_corners, "b"))

    def pixel(axis: int, size: int) -> Any:  # normalised [-1, 1] -> pixel coordinate, as torch does
        coordinate = g.op("Gather", grid, _const(g, axis, torch.int64), axis_i=3)
        shifted = g.op("Add", coordinate, _const(g, 1.0))
        if align:
            return g.op("Mul", shifted, _const(g, (size - 1) / 2.0))
        return g.op("Div", g.op("Sub", g.op("Mul", shifted, _const(g, float(size))), _const(g, 1.0)), _const(g, 2.0))

    x, y = pixel(0, width), pixel(1, height)
    x0, y0 = g.op("Floor", x), g.op("Floor", y)
    x1, y1 = g.op("Add", x0, _const(g, 1.0)), g.op("Add", y0, _const(g, 1.0))
    wx1, wy1 = g.op("Sub", x, x0), g.op("Sub", y, y0)
    wx0, wy0 = g.op("Sub", _const(g, 1.0), wx1), g.op("Sub", _const(g, 1.0), wy1)
    flat = g.op("Reshape", image, _const(g, [-1, channels, height * width], torch.int64))
    total = None
    for xs, ys, weight in ((x0, y0, g.op("Mul", wx0, wy0)), (x1, y0, g.op("Mul", wx1, wy0)),
                           (x0, y1, g.op("Mul", wx0, wy1)), (x1, y1, g.op("Mul", wx1, wy1))):
        inside_x = g.op("And", g.op("Greater", xs, _const(g, -1.0)), g.op("Less", xs, _const(g, float(width))))
        inside_y = g.op("And", g.op("Greater", ys, _const(g, -1.0)), g.op("Less", ys, _const(g, float(height))))
        inside = g.op("And", inside_x, inside_y)
        weight = g.op("Mul", weight, g.op("Cast", inside, to_i=1))  # 1 = FLOAT
        xc = g.op("Clip", xs, _const(g, 0.0), _const(g, float(width - 1)))
        yc = g.op("Clip", ys, _const(g, 0.0), _const(g, float(height - 1)))
        index = g.op("Cast", g.op("Add", g.op("Mul", yc, _const(g, float(width))), xc), to_i=6)  # 6 = INT32
        index = g.op("Expand", g.op("Reshape", index, _const(g, [-1, 1, points], torch.int64)),
                     _const(g, [1, channels, 1], torch.int64))
        values = g.op("GatherElements", flat, index, axis_i=2)
        term = g.op("Mul", values, g.op("Reshape", weight, _const(g, [-1, 1, points], torch.int64)))
        total = term if total is None else g.op("Add", total, term)
    return g.op("Reshape", total, _const(g, [-1, channels, out_height, out_width], torch.int64))


def register() -> None:
    """Install the ``affine_grid`` (opsets 13-19) and ``grid_sampler`` (13-15) symbolics, once."""
    global _registered
    if not _registered:
        torch.onnx.register_custom_op_symbolic("aten::affine_grid_generator", _affine_grid_generator, LEGACY_OPSET)
        torch.onnx.register_custom_op_symbolic("aten::grid_sampler", _grid_sampler, LEGACY_OPSET)
        _registered = True
