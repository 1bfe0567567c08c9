"""The simulator's own HTTP control endpoints (`/simulator/...`): rules, throttling, what it received."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from daraja_sim import errors
from daraja_sim.state import Behaviour

if TYPE_CHECKING:
    from daraja_sim.core import Simulator


def add_routes(app: web.Application, sim: Simulator) -> None:
    async def behaviour(request: web.Request) -> web.Response:
        """`{"default": {...}, "rules": [{"behaviour": {...}, "amount": 13, "times": 1}, ...],
        "throttle": {"every": 3, "seconds": 60}}`."""
        try:
            data = await request.json()
            if "default" in data:
                sim.default = Behaviour.from_json(data["default"])
            for rule in data.get("rules", []):
                rule = dict(rule)
                sim.add_rule(Behaviour.from_json(rule.pop("behaviour", {})), **rule)
            if "throttle" in data:
                sim.throttle(int(data["throttle"]["every"]), float(data["throttle"]["seconds"]))
        except (json.JSONDecodeError, TypeError, ValueError, AttributeError, KeyError) as exc:
            return errors.daraja_error(400, errors.INVALID, f"Bad Request - {exc}")
        return web.json_response({"rules": len(sim.rules)})

    async def reset(_request: web.Request) -> web.Response:
        sim.reset()
        return web.json_response({"reset": True})

    async def requests(_request: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in sim.received], dumps=_dumps)

    async def payouts(_request: web.Request) -> web.Response:
        """Every payout accepted, with the ids it was given, and how many tokens were issued and refused."""
        return web.json_response(
            {
                "payouts": [asdict(x) for x in sim.payouts.values()],
                "tokens_issued": sim.tokens_issued,
                "token_refusals": sim.token_refusals,
                "throttled": sim.throttled,
            },
            dumps=_dumps,
        )

    async def callbacks(_request: web.Request) -> web.Response:
        return web.json_response([asdict(d) for d in sim.deliveries], dumps=_dumps)

    async def certificate(_request: web.Request) -> web.Response:
        return web.Response(body=sim.certificate, content_type="application/x-pem-file")

    app.router.add_post("/simulator/behaviour", behaviour)
    app.router.add_post("/simulator/reset", reset)
    app.router.add_get("/simulator/requests", requests)
    app.router.add_get("/simulator/callbacks", callbacks)
    app.router.add_get("/simulator/payouts", payouts)
    app.router.add_get("/simulator/certificate", certificate)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)
