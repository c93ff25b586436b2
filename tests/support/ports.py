"""Free TCP ports on the loopback interface."""

import contextlib
import socket


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago.

    The kernel picks the port when we bind port 0; we close our socket and hand
    the number to a server. Another process could take it in between, but the
    kernel hands out ephemeral ports in a way that makes that rare.
    """
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports that were free on 127.0.0.1.

    One server needs several ports (client, monitoring, routes). Asking for
    them one at a time can give the same number twice, because each probe
    socket is closed before the next one binds; holding all of them open
    until every number is known makes them distinct.

    :param count: how many ports.
    """
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(
                socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            )
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def accepts_connections(
    port: int, host: str = "127.0.0.1", timeout: float = 0.5
) -> bool:
    """Tell whether something accepts TCP connections on ``host:port`` now.

    :param port: the TCP port to probe.
    :param host: the address to probe.
    :param timeout: seconds to wait for the TCP handshake.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
