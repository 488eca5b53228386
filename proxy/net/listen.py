"""Where a listener really binds, and a warning whenever that is not loopback only.

A string match on "0.0.0.0" misses ``0``, ``0x0``, ``::``, an empty host, a hostname
that resolves to the LAN address, and so on: the address is resolved here exactly as
``asyncio.start_server`` (and so mitmproxy) resolves it before binding, and the
decision is taken on the resulting IP addresses.
"""

from __future__ import annotations

import ipaddress
import socket

from proxy.core.errors import UserError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def resolve_listen_host(host: str) -> list[IPAddress]:
    """The addresses a listener given ``host`` binds, in getaddrinfo's order.

    An empty host means every interface, as for asyncio (``hosts = [None]``). A host
    that does not resolve is a :class:`UserError`, not a traceback.
    """
    try:
        infos = socket.getaddrinfo(
            host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise UserError(f"cannot listen on {host!r}: unknown host ({exc.strerror})") from None
    except (UnicodeError, ValueError) as exc:
        raise UserError(f"cannot listen on {host!r}: not a valid host name ({exc})") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is reached as 127.0.0.1
        if address not in addresses:
            addresses.append(address)
    return addresses


def listen_warning(host: str, exposes: str) -> str | None:
    """A warning if listening on ``host`` lets other machines reach ``exposes``, else None.

    Raises :class:`UserError` if ``host`` does not resolve, so a command calls this
    before it starts anything.
    """
    addresses = resolve_listen_host(host)
    shown = " and ".join(map(str, addresses))
    named = host if host else repr(host)
    if any(a.is_unspecified for a in addresses):
        where = "every interface" if host == shown else f"{shown}, every interface"
        return f"listening on {named} ({where}): anyone on the network can reach {exposes}"
    exposed = [a for a in addresses if not a.is_loopback]
    if not exposed:
        return None
    what = " and ".join(map(str, exposed))
    where = "" if host == what else f" ({what})"
    return (
        f"listening on {named}{where}, which is not a loopback address: anyone who can "
        f"reach it on the network can reach {exposes}"
    )
