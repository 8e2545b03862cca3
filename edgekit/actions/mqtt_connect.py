"""paho's client for the publisher: built from ``[mqtt]``, and saying why a connection failed.

paho's network thread catches the OSError of a failed attempt and calls ``on_connect_fail``
without it, so every failure used to read "cannot reach the broker", a certificate that fails
verification included. The reason is what the user needs to fix it.
"""

from __future__ import annotations

import socket
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgekit.errors import MqttError
from edgekit.actions.settings import MqttSettings
from edgekit.actions.mqtt_topics import OFFLINE


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


def set_tls(client: Client, s: MqttSettings) -> None:
    """Load ``[mqtt]``'s TLS files into ``client`` (``config check`` calls it too: the same refusal)."""
    try:
        client.tls_set(ca_certs=s.ca_certs, certfile=s.certfile, keyfile=s.keyfile)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise MqttError(f"[mqtt] TLS files unusable ({exc}); check ca_certs, certfile and keyfile") from exc


def check_tls(s: MqttSettings) -> None:
    """Load the TLS files as a run would, without a connection; an MqttError if they are unusable."""
    if s.tls:
        set_tls(Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311), s)


def make_client(s: MqttSettings, client_id: str, will_topic: str, reconnect_delay: tuple[float, float]) -> Client:
    """A client set up from ``[mqtt]`` (credentials, TLS, last will, back-off), not yet connected.

    Bad settings raise :class:`MqttError` here, at start-up or reload, not later in paho's thread.
    """
    client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.suppress_exceptions = True  # a bug in a callback must not kill the network thread
    if s.username:
        client.username_pw_set(s.username, s.password)
    if s.tls:
        set_tls(client, s)
    client.will_set(will_topic, OFFLINE, qos=s.qos, retain=True)
    client.reconnect_delay_set(*reconnect_delay)
    try:
        if not 0 < s.port < 65536:  # paho lets it through, then its thread dies of OverflowError
            raise ValueError(f"port {s.port} is not 1..65535")
        client.connect_async(s.host, s.port, s.keepalive)  # only checks and stores; no network yet
    except ValueError as exc:
        raise MqttError(f"[mqtt] host/port/keepalive unusable: {exc}") from exc
    return client


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


TLS_PORTS = (8883, 8884, 443)


def likely_cause(port: int, tls: bool) -> str:
    """Why a broker would close a connection before it answers CONNECT, from what the config says.

    Mosquitto logs "wrong version number" and hangs up when plain MQTT reaches a TLS listener;
    the client sees only a closed socket, every few seconds, for as long as it runs.
    """
    if not tls and port in TLS_PORTS:
        return f"port {port} is MQTT over TLS; set [mqtt] tls = true (or use the plain port, 1883)"
    if not tls:
        return ("the port may be a TLS listener (set [mqtt] tls = true), or the broker refuses this client "
                "(see the broker's log)")
    return "the broker refuses this client or protocol (see the broker's log); check [mqtt] port and tls"
