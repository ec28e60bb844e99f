"""Localhost control endpoint of a running simulator (FastAPI).

``plc-sim fault ...`` and tests talk to it::

    GET    /health          liveness
    GET    /status          simulated time, machines, fault switches, endpoints
    POST   /faults          apply or schedule a fault (JSON FaultCommand)
    DELETE /faults          clear every fault on every face
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Body, FastAPI, HTTPException

from simulators import __version__
from simulators.errors import FaultError
from simulators.faults.commands import Clear, FaultCommand
from simulators.model.truth import format_ts

if TYPE_CHECKING:
    from simulators.faults.controller import FaultController
    from simulators.runtime import Face, Simulation


def build_control_app(sim: Simulation, controller: FaultController, faces: list[Face]) -> FastAPI:
    app = FastAPI(title="Lineside PLC simulator control", version=__version__)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/status")
    async def status() -> dict[str, Any]:
        now = sim.clock.now()
        return {
            "scenario": sim.scenario.scenario,
            "seed": sim.seed,
            "speed": sim.speed,
            "sim_time": format_ts(now),
            "ticks": sim.tick_count,
            "value_steps": sim.value_step_count,
            "last_step_lag_s": round(sim.last_step_lag_s, 4),
            "max_step_lag_s": round(sim.max_step_lag_s, 4),
            "step_duration_s": _summary(list(sim.step_durations_s)),
            "endpoints": {face.name.value: face.endpoints() for face in faces},
            "faults": controller.status(),
            "machines": [
                {
                    "name": name,
                    "state": model.state.value,
                    "reason": model.reason,
                    "order": model.order,
                    "product": model.product,
                    "total": model.counters.total,
                    "good": model.counters.good,
                    "scrap": model.counters.scrap,
                    "ended": model.ended,
                }
                for name, model in sim.machines.items()
            ],
        }

    @app.post("/faults")
    async def post_fault(command: FaultCommand = Body(...)) -> dict[str, Any]:
        try:
            return await controller.submit(command)
        except FaultError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None

    @app.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        return await controller.apply(Clear())

    return app


def _summary(values: list[float]) -> dict[str, float]:
    """p50/p99/max of recent step durations (seconds)."""
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "p50": round(pick(0.5), 5),
        "p99": round(pick(0.99), 5),
        "max": round(ordered[-1], 5),
        "n": len(ordered),
    }
