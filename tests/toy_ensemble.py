"""The tiny grid experiment of tests/toy_grid.py with its seeds computed side by side: one
``ensemble(cfg, variant, seeds)`` call per variant."""

from tests.toy_grid import QUICK, Config, claims, collect, figures, task, variants  # noqa: F401


def ensemble(cfg: Config, variant: str, seeds: list) -> list:
    import minibn as mb

    out = []
    for seed in seeds:  # as if side by side: each seed's result, with the default generator reseeded
        mb.manual_seed(seed)
        out.append(task(cfg, variant, seed))
    return out
