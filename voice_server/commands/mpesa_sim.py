"""`ongea-pesa mpesa-sim`: the local Daraja simulator on its own, for trying the server (or another client)
against something that behaves like Safaricom's API without reaching it."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from daraja_sim import Behaviour, Simulator
from voice_server.commands.arg_types import port_number
from voice_server.loop import until_signal
from voice_server.runtime import run_long_running
from voice_server.settings import Settings

log = logging.getLogger("ongea_pesa")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mpesa-sim", help="run the local Daraja (M-Pesa) simulator alone")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument(
        "--port", type=port_number, default=None, help="listen port (default ONGEA_MPESA_SIM_PORT or 8081)"
    )
    p.add_argument("--consumer-key", help="accept only this consumer key (default: any non-empty pair)")
    p.add_argument("--consumer-secret", help="accept only this consumer secret")
    p.add_argument(
        "--certificate-out",
        type=Path,
        help="write the simulator's certificate here (point DARAJA_CERTIFICATE_PATH at it)",
    )
    p.add_argument("--delay", type=float, default=0.5, help="seconds before a callback is delivered")
    p.add_argument(
        "--token-lifetime",
        type=int,
        default=3599,
        help="expires_in of its tokens in seconds (default 3599); each new token invalidates the last",
    )
    p.add_argument(
        "--default",
        choices=["success", "fail", "timeout", "twice", "out_of_order"],
        default="success",
        help="what happens to requests no rule matches (rules: POST /simulator/behaviour)",
    )
    p.add_argument(
        "--production-like",
        action="store_true",
        help="behave as production does where the sandbox is lenient: C2B URLs register once (a repeat "
        "answers 500.003.1001), consumer key and secret required",
    )
    p.add_argument(
        "--callbacks-to",
        metavar="LOCAL_URL",
        help="deliver callbacks meant for ONGEA_PUBLIC_URL (https://...) to this URL (the stand-in for "
        "the TLS proxy in front of the server)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The simulator stands in for M-Pesa: no database, no settings of ours to refuse, no callback secret.
    return run_long_running(
        "mpesa-sim", lambda settings: _simulate(args, settings), refuse_unsafe=False, redact_logs=False
    )


async def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    behaviour = {
        "success": Behaviour(),
        "fail": Behaviour(outcome="fail"),
        "timeout": Behaviour(callback="none"),
        "twice": Behaviour(callback="twice"),
        "out_of_order": Behaviour(callback="out_of_order"),
    }[args.default]
    sim = Simulator(
        consumer_key=args.consumer_key,
        consumer_secret=args.consumer_secret,
        shortcode=settings.daraja_shortcode,
        passkey=settings.daraja_passkey.get_secret_value(),
        callback_delay=args.delay,
        default=behaviour,
        token_lifetime=args.token_lifetime,
    )
    if args.production_like:
        if not (args.consumer_key and args.consumer_secret):
            print("ongea-pesa: --production-like needs --consumer-key and --consumer-secret", file=sys.stderr)
            return 2
        sim.c2b_register_once = True
    if args.callbacks_to:
        if not settings.public_url:
            print(
                "ongea-pesa: --callbacks-to needs ONGEA_PUBLIC_URL (the URL to deliver elsewhere)",
                file=sys.stderr,
            )
            return 2
        sim.callback_rewrite = (settings.public_url.rstrip("/"), args.callbacks_to.rstrip("/"))
    if settings.daraja_initiator_password is not None:
        sim.initiator_password = settings.daraja_initiator_password.get_secret_value()
    if args.certificate_out:
        args.certificate_out.write_bytes(sim.certificate)
    port = args.port if args.port is not None else (settings.mpesa_sim_port or 8081)
    await _serve(sim, args.host, port, args.certificate_out)
    return 0


async def _serve(sim: Simulator, host: str, port: int, certificate: Path | None) -> None:
    base = await sim.start(host, port)
    log.info("M-Pesa (Daraja) simulator listening on %s", base)
    log.info(
        "point the server at it: DARAJA_BASE_URL=%s DARAJA_CONSUMER_KEY=... DARAJA_CONSUMER_SECRET=... "
        "DARAJA_CERTIFICATE_PATH=%s (certificate also at %s/simulator/certificate)",
        base,
        certificate or "<file>",
        base,
    )
    try:
        await until_signal()
    finally:
        await sim.stop()
