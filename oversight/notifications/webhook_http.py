"""Webhook requests: where they may go, and the one way they are sent.

A webhook URL is typed in by a team (notifications, compensations) or set in the
environment (checkpoint sinks), and Oversight POSTs to it from inside the deployment's
network. So a URL may not lead to an internal address (loopback, private, link-local such
as a cloud's metadata service, shared, reserved) unless ``WEBHOOK_ALLOWED_NETWORKS``
lists a network holding it; under DEBUG any address goes, as any scheme does.

Checked twice, as the scheme is: when a URL is saved (an address written in it, or
``localhost``: no name is looked up then), and before every send, where the name is
resolved (within the webhook's time-out), every address it resolves to must be allowed,
and the request goes to the address checked (its name kept for the Host header and TLS),
so a name that resolves elsewhere a moment later (DNS rebinding) is not followed there.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from oversight.notifications.constants import WEBHOOK_TIMEOUT_SECONDS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
_LOOPBACK = ipaddress.ip_address("127.0.0.1")
INTERNAL = (
    "Webhook URLs may not lead to an internal address (loopback, private, link-local,"
    " reserved) unless WEBHOOK_ALLOWED_NETWORKS allows it."
)


def _address(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return address


def address_allowed(address: IPAddress) -> bool:
    if settings.DEBUG or address.is_global:
        return True
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.WEBHOOK_ALLOWED_NETWORKS
    )


def _is_loopback(host: str) -> bool:
    address = _address(host)
    return host.lower() in _LOOPBACK_NAMES or (address is not None and address.is_loopback)


def validate_webhook_url(url: str) -> None:
    """https, except to this machine (a local receiver) or anywhere when DEBUG is on; no
    credentials in it; no internal address written in it (names are resolved at send)."""
    URLValidator(schemes=["http", "https"])(url)
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValidationError("Put credentials in the signing secret, not in the URL.")
    host = parts.hostname or ""
    if parts.scheme == "http" and not (settings.DEBUG or _is_loopback(host)):
        raise ValidationError("Webhook URLs must use https (http only to localhost).")
    written = _LOOPBACK if host.lower() in _LOOPBACK_NAMES else _address(host)
    if written is not None and not address_allowed(written):
        raise ValidationError(INTERNAL)


# Name lookups, each bounded by the webhook's time-out: the system's resolver has none of
# its own to speak of (its retries can take half a minute), and a send must not wait for
# it longer than for the answer. A lookup past its time is left to end in its thread;
# with every thread busy, later lookups wait in line and time out the same way.
_LOOKUPS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


def _resolved(host: str, port: int) -> list[IPAddress]:
    lookup = _LOOKUPS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        found = lookup.result(timeout=WEBHOOK_TIMEOUT_SECONDS)
    except TimeoutError:
        lookup.cancel()
        why = f"no answer in {WEBHOOK_TIMEOUT_SECONDS} s"
        raise httpx.ConnectError(f"{host} could not be resolved: {why}") from None
    except OSError as exc:
        raise httpx.ConnectError(f"{host} could not be resolved: {exc}") from None
    return [address for info in found if (address := _address(str(info[4][0]))) is not None]


def webhook_post(url: str, *, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
    """POST ``body`` to ``url``, to an address its name resolves to now, if every one is
    allowed (ValidationError if not); no redirects followed."""
    validate_webhook_url(url)
    target = httpx.URL(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    addresses = _resolved(target.host, port)
    if not addresses or not all(address_allowed(a) for a in addresses):
        raise ValidationError(INTERNAL)
    pinned = target.copy_with(host=str(addresses[0]))
    request_headers = {**headers, "Host": target.netloc.decode("ascii")}
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False) as client:
        return client.post(
            pinned,
            content=body,
            headers=request_headers,
            extensions={"sni_hostname": target.host},
        )
