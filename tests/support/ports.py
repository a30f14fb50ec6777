import socket


def free_port() -> int:
    """A port nobody listens on right now (bind 0); used for servers a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
