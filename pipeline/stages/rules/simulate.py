"""rule simulate: one sheet row as a simulated NWB recording and its ground truth."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

from pipeline.simulate import simulate_session


def run(nwb_out: str | PathLike, truth_out: str | PathLike, *, session: Mapping, seed: int, params) -> None:
    """rule simulate: one sheet row as a simulated NWB recording and its ground truth."""
    simulate_session(
        nwb_out,
        truth_out,
        session_id=session["session_id"],
        subject=session["subject"],
        date=session["date"],
        hemisphere=session["hemisphere"],
        task=session["task"],
        areas=session["area_list"],
        seed=seed,
        params=params,
    )
