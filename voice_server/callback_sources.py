"""Who may call the M-Pesa callbacks: an optional allowlist of source addresses (issue 20, 8).

Callbacks that credit money on their own word (an STK success, a C2B confirmation) are otherwise guarded
only by the secret in their path. With `ONGEA_MPESA_CALLBACK_ALLOWLIST` set, a callback from any other
address is refused (403) before anything is recorded. Off by default (the sandbox and the local simulator
call from anywhere); recommended in production. Behind a reverse proxy, the proxy's own addresses go in
`ONGEA_MPESA_TRUSTED_PROXIES`: only then is `X-Forwarded-For` read, from the right, skipping trusted hops,
so a client cannot name its own source.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

# Safaricom's published callback (result/confirmation) source addresses.
SAFARICOM_CALLBACK_ADDRESSES = (
    "196.201.214.200",
    "196.201.214.206",
    "196.201.213.114",
    "196.201.214.207",
    "196.201.214.208",
    "196.201.213.44",
    "196.201.212.127",
    "196.201.212.138",
    "196.201.212.129",
    "196.201.212.136",
    "196.201.212.74",
    "196.201.212.69",
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def networks(spec: str) -> tuple[Network, ...]:
    """`1.2.3.4, 10.0.0.0/8, safaricom` as networks; ValueError names a part that is not one."""
    parts: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if part.lower() == "safaricom":
            parts.extend(SAFARICOM_CALLBACK_ADDRESSES)
        elif part:
            parts.append(part)
    try:
        return tuple(ipaddress.ip_network(p, strict=False) for p in parts)
    except ValueError as exc:
        raise ValueError(f"not an address or network: {exc}") from exc


def _within(address: str, nets: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports an IPv4 caller as ::ffff:a.b.c.d
    return any(ip in net for net in nets)


def source_address(peer: str | None, forwarded_for: str | None, trusted_proxies: str) -> str:
    """The caller's address: the peer, or (when the peer is a trusted proxy) the rightmost address of
    `X-Forwarded-For` that is not a trusted proxy itself."""
    proxies = networks(trusted_proxies)
    address = peer or ""
    if not forwarded_for or not _within(address, proxies):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        address = hop
        if not _within(hop, proxies):
            break
    return address


def allowed(peer: str | None, forwarded_for: str | None, allowlist: str, trusted_proxies: str) -> bool:
    if not allowlist.strip():
        return True
    return _within(source_address(peer, forwarded_for, trusted_proxies), networks(allowlist))
