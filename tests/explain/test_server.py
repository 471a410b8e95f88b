"""The server's socket: every connection it accepts sends small writes at once (TCP_NODELAY).

A response goes out as headers, then body; with Nagle's algorithm on, the body waits for the
browser's delayed ACK of the headers, ~40 ms on Linux, on every request of a kept-alive
connection. asyncio turns Nagle off only for sockets that name IPPROTO_TCP.
"""

import asyncio
import socket

from kernelab.apps.explain.app import listen


def test_accepted_connections_have_nagle_off():
    async def accept_one() -> int:
        accepted = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listen("127.0.0.1", 0))
        async with server:
            host, port = server.sockets[0].getsockname()[:2]
            _, writer = await asyncio.open_connection(host, port)
            nodelay = await asyncio.wait_for(accepted, 10)
            writer.close()
        return nodelay

    assert asyncio.run(accept_one()) != 0
