// The reference: Node.js Socket.IO 4.8 speaking chapter 10's protocol with Socket.IO's defaults
// (notably perMessageDeflate: false, so it declines the compression browsers offer).
//
//   PORT=5000 [REDIS_URL=redis://127.0.0.1:6379] node reference_server.js
//
// What the load generator uses of chapter 10, and only that:
//   POST /login (form field "username")  sets a cookie naming the user;
//   connect                               joins the connection to the room "user:<name>";
//   "send_notification" {to, text}        emits "notification" {id, to, from, text, at} to the
//                                         room "user:<to>" and acknowledges with {id}.
// Minimal on purpose: no stored notifications, no replay, an unsigned cookie. Through Redis
// when REDIS_URL is set (@socket.io/redis-adapter, like Flask-SocketIO's message queue).
"use strict";
const http = require("node:http");
const { Server } = require("socket.io");

const NAME = /^[\w.-]{1,32}$/;
const counters = new Map(); // per recipient, like chapter 10's notifications:<name>:seq

function userOf(cookieHeader) {
  const match = /(?:^|;\s*)username=([\w.-]{1,32})(?:;|$)/.exec(cookieHeader || "");
  return match && match[1];
}

function handleHttp(request, response) {
  if (request.method === "POST" && request.url === "/login") {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      const name = new URLSearchParams(body).get("username") || "";
      if (!NAME.test(name)) {
        response.writeHead(400).end("bad name\n");
        return;
      }
      response.writeHead(302, { Location: "/", "Set-Cookie": `username=${name}; HttpOnly; Path=/` }).end();
    });
    return;
  }
  response.writeHead(200, { "Content-Type": "text/plain" }).end("reference server\n");
}

async function main() {
  const httpServer = http.createServer(handleHttp);
  const io = new Server(httpServer);
  if (process.env.REDIS_URL) {
    const { createAdapter } = require("@socket.io/redis-adapter");
    const { createClient } = require("redis");
    const publisher = createClient({ url: process.env.REDIS_URL });
    const subscriber = publisher.duplicate();
    await Promise.all([publisher.connect(), subscriber.connect()]);
    io.adapter(createAdapter(publisher, subscriber, { key: "bench-reference" }));
  }
  io.use((socket, next) => {
    const name = userOf(socket.handshake.headers.cookie);
    if (!name) return next(new Error("log in first"));
    socket.data.name = name;
    next();
  });
  io.on("connection", (socket) => {
    socket.join(`user:${socket.data.name}`);
    socket.on("send_notification", (data, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      const { to, text } = data || {};
      if (!NAME.test(to || "") || typeof text !== "string" || !text.trim() || text.length > 500) {
        reply({ error: "send an object {to, text}" });
        return;
      }
      const id = (counters.get(to) || 0) + 1; // per process: enough for a benchmark
      counters.set(to, id);
      const at = Math.floor(Date.now() / 1000);
      io.to(`user:${to}`).emit("notification", { id, to, from: socket.data.name, text: text.trim(), at });
      reply({ id });
    });
  });
  httpServer.listen(Number(process.env.PORT || 5000), process.env.HOST || "127.0.0.1");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
