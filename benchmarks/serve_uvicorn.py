"""uvicorn serving MODULE:APP on a listening socket the benchmark made (file descriptor FD).

    python -m serve_uvicorn FD MODULE:APP [uvloop|asyncio]

The server `uvicorn MODULE:APP --loop uvloop --http httptools` runs, with uvicorn's defaults
otherwise (access log on stdout, lifespan auto, proxy headers), built through uvicorn's own API:
``uvicorn.Server(Config(...)).run(sockets=[...])``. The socket is handed over because it lets
the benchmark connect and send its request the moment the process is spawned, so that "spawn to
first answer" needs no polling of the port. uvicorn's ``--fd`` option would do the same from the
command line but wraps the descriptor as a Unix socket, which turns off TCP_NODELAY and takes
another transport; ``import uvicorn`` loads its command-line module (click) all the same.
"""

import socket
import sys

import uvicorn

fd, app, loop = int(sys.argv[1]), sys.argv[2], (sys.argv[3:] or ["uvloop"])[0]
sys.path.insert(0, ".")  # as uvicorn's --app-dir default does
listener = socket.socket(fileno=fd)  # family and type read from the descriptor
config = uvicorn.Config(app, loop=loop, http="httptools")
uvicorn.Server(config).run(sockets=[listener])
