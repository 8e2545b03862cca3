"""Why an MQTT connection attempt failed, in words: paho's client, remembering the reason.

paho's network thread catches the OSError of a failed attempt and calls ``on_connect_fail``
without it, so every failure used to read "cannot reach the broker", a certificate that fails
verification included. The reason is what the user needs to fix it.
"""

from __future__ import annotations

import socket
import ssl

import paho.mqtt.client as mqtt


class Client(mqtt.Client):
    """paho's client, remembering why the last connection attempt failed.

    paho's network thread catches the OSError of a failed attempt and calls ``on_connect_fail``
    without it; the reason (a refused port, an unknown host, a certificate that fails
    verification) is what the user needs to see.
    """

    last_connect_error: OSError | None = None

    def reconnect(self):
        try:
            result = super().reconnect()
        except OSError as exc:
            self.last_connect_error = exc
            raise
        self.last_connect_error = None
        return result


def explain_connect_error(exc: OSError | None, host: str, port: int) -> str:
    """One line that says why a connection attempt failed, most specific reason first."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or str(exc)
        return (f"TLS: certificate verify failed: {detail}; check [mqtt] ca_certs (the CA that signed the "
                f"broker's certificate) and that the certificate names the host {host!r}")
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}; is port {port} a TLS listener, and do tls/port match?"
    if isinstance(exc, socket.gaierror):
        why = f"the host name {host!r} does not resolve ({exc.strerror or exc}); check [mqtt] host"
    elif isinstance(exc, ConnectionRefusedError):
        why = f"connection refused, nothing listens on {host}:{port}; check [mqtt] host/port and that the broker runs"
    elif isinstance(exc, (TimeoutError, socket.timeout)):
        why = f"no answer from {host}:{port} (timed out); check the address and any firewall"
    elif exc is not None:
        why = exc.strerror or str(exc) or type(exc).__name__
    else:
        return "cannot reach the broker"
    return f"cannot reach the broker: {why}"
