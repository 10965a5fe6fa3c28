// Reference peer: the same Flack-style chat server on Node.js Socket.IO.
//
// Owns nothing but its own process: rooms are channels, the last 100 messages of each
// room are kept in memory, and a posted message is broadcast to the other members of its
// room. Run by `benches/run-all.sh` (never by tests), measured by
// `loadgen --protocol socketio`. Listens on loopback only.
//
// Events (namespace "/"):
//   join {room}       -> ack {room, messages: [last 100]}; joins the room
//   post {room, text} -> ack {id}; the others in the room get message {room, id, text}
//
// Usage: node node_server.js PORT
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const HISTORY = 100;
const port = Number(process.argv[2] || 3000);
const server = http.createServer();
const io = new Server(server, { transports: ["websocket", "polling"] });
const history = new Map();
let nextId = 1;

io.on("connection", (socket) => {
  socket.on("join", (data, ack) => {
    const room = String(data.room);
    socket.join(room);
    if (typeof ack === "function") ack({ room, messages: history.get(room) || [] });
  });
  socket.on("post", (data, ack) => {
    const room = String(data.room);
    const message = { room, id: nextId++, text: String(data.text) };
    let kept = history.get(room);
    if (!kept) history.set(room, (kept = []));
    kept.push(message);
    if (kept.length > HISTORY) kept.shift();
    socket.to(room).emit("message", message);
    if (typeof ack === "function") ack({ id: message.id });
  });
});

server.listen(port, "127.0.0.1", () => {
  console.log(`node socket.io listening on 127.0.0.1:${port}`);
});
