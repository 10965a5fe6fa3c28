"""Reference peer: the seed's stack, a Flack-style chat server on Flask-SocketIO.

Owns nothing but its own process: rooms are channels, the last 100 messages of each room
are kept in memory, and a posted message is broadcast to the other members of its room.
Run by `benches/run-all.sh` (never by tests) and measured by `loadgen --protocol socketio`.
It must not be reachable from anywhere but loopback.

Events (Socket.IO, namespace "/"):
  join {"room": R}            -> ack {"room": R, "messages": [last 100]}; joins the room
  post {"room": R, "text": T} -> ack {"id": N}; others in R get message {"room","id","text"}

Usage: python flask_server.py --mode gevent|threading --port PORT
"""

import argparse
import collections
import itertools
import logging
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--mode", choices=["gevent", "threading"], default="gevent")
parser.add_argument("--port", type=int, default=5000)
args = parser.parse_args()

if args.mode == "gevent":
    from gevent import monkey

    monkey.patch_all()

from flask import Flask, request  # noqa: E402
from flask_socketio import SocketIO, join_room  # noqa: E402

HISTORY = 100
logging.getLogger("werkzeug").setLevel(logging.ERROR)

app = Flask(__name__)
socketio = SocketIO(app, async_mode=args.mode, logger=False, engineio_logger=False)
history = collections.defaultdict(lambda: collections.deque(maxlen=HISTORY))
ids = itertools.count(1)


@socketio.on("join")
def on_join(data):
    room = str(data["room"])
    join_room(room)
    return {"room": room, "messages": list(history[room])}


@socketio.on("post")
def on_post(data):
    room = str(data["room"])
    message = {"room": room, "id": next(ids), "text": str(data["text"])}
    history[room].append(message)
    socketio.emit("message", message, to=room, skip_sid=request.sid)
    return {"id": message["id"]}


if __name__ == "__main__":
    print(f"flask-socketio ({args.mode}) listening on 127.0.0.1:{args.port}", flush=True)
    kwargs = {"allow_unsafe_werkzeug": True} if args.mode == "threading" else {}
    socketio.run(app, host="127.0.0.1", port=args.port, log_output=False, **kwargs)
    sys.exit(0)
