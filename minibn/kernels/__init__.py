"""Array-level kernels for the first-order path of the normalization layers.

When no graph is being built (plain ``backward()``), a layer may compute its
gradient with these functions on raw arrays instead of differentiable ops.
``batchnorm.py`` is the NumPy reference; faster kernels must match it.
"""
