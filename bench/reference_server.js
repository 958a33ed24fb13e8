// The reference: Node.js Socket.IO 4.8 doing the benchmark's work with its defaults
// (notably perMessageDeflate: false, so it declines the compression browsers offer).
//
//   PORT=5000 [REDIS_URL=redis://127.0.0.1:6379] node reference_server.js
//
// Events, the same ones the load generator sends to every server:
//   "echo"   client -> server, acknowledged with the payload it carried (round trips);
//   "notify" client -> server, acknowledged; the server emits "notification" with
//            the same payload to every connected client, through Redis when
//            REDIS_URL is set (@socket.io/redis-adapter, like Flask-SocketIO's message queue).
"use strict";
const http = require("node:http");
const { Server } = require("socket.io");

async function main() {
  const httpServer = http.createServer((request, response) => {
    response.writeHead(200, { "Content-Type": "text/plain" });
    response.end("reference server\n"); // the readiness probe's page
  });
  const io = new Server(httpServer);
  if (process.env.REDIS_URL) {
    const { createAdapter } = require("@socket.io/redis-adapter");
    const { createClient } = require("redis");
    const publisher = createClient({ url: process.env.REDIS_URL });
    const subscriber = publisher.duplicate();
    await Promise.all([publisher.connect(), subscriber.connect()]);
    io.adapter(createAdapter(publisher, subscriber));
  }
  io.on("connection", (socket) => {
    socket.on("echo", (payload, ack) => typeof ack === "function" && ack(payload));
    socket.on("notify", (payload, ack) => {
      io.emit("notification", payload);
      if (typeof ack === "function") ack({ ok: true });
    });
  });
  // Ctrl-C (the runner's stop signal) ends the process at once.
  process.on("SIGINT", () => process.exit(0));
  httpServer.listen(Number(process.env.PORT || 5000), process.env.HOST || "127.0.0.1");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
