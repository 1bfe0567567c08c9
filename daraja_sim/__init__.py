"""A local Daraja (Safaricom's M-Pesa API) for development and tests, apart from the code that moves money.

It checks requests by the portal pages' own field lists (not by any client's models), answers with
Daraja's error codes and HTTP statuses, and calls back with bodies shaped as the portal's samples. Split
by API: `stk` (STK push and query), `payouts` (B2C, B2Pochi, B2B, status, balance, reversal), `c2b` (C2B
and Pull Transactions) and `control` (the `/simulator/...` endpoints tests and operators use).
"""

from daraja_sim.core import SANDBOX_INITIATOR_PASSWORD, SANDBOX_PASSKEY, Simulator
from daraja_sim.state import Behaviour, CallbackMode, Delivery, Received, Rule, SimC2b, SimPayout, SimStk

__all__ = [
    "SANDBOX_INITIATOR_PASSWORD",
    "SANDBOX_PASSKEY",
    "Behaviour",
    "CallbackMode",
    "Delivery",
    "Received",
    "Rule",
    "SimC2b",
    "SimPayout",
    "SimStk",
    "Simulator",
]
