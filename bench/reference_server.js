// The reference: Node.js Socket.IO 4.8 doing chapter 10's work, with Socket.IO's defaults
// (notably perMessageDeflate: false, so it declines the compression browsers offer).
//
//   PORT=5000 REDIS_URL=redis://127.0.0.1:6379 STORE_AND_PUBLISH="$(lua script)" \
//   NOTIFICATIONS_CHANNEL=notifications KEEP=1000 node reference_server.js
//
// The same work as chapter 10, in the same Redis, with the same keys:
//   POST /login (form field "username")  adds the name to the set "users" and sets a signed cookie;
//   connect {last_id}                     joins the room "user:<name>", then replays from Redis what
//                                         the connection missed: "status", "read", each "notification";
//   "send_notification" {to, text}        runs chapter 10's own Lua script (run.py reads it from
//                                         notification_store.py): store in the stream, announce on the
//                                         channel, acknowledge with {id};
//   the channel                           every process subscribes and delivers each announced
//                                         notification to its own tabs of the recipient;
//   emits to a room across processes      @socket.io/redis-adapter (Flask-SocketIO's message queue).
"use strict";
const crypto = require("node:crypto");
const http = require("node:http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const NAME = /^[\w.-]{1,32}$/;
const MAX_TEXT = 500;
const SCRIPT = process.env.STORE_AND_PUBLISH;
const CHANNEL = process.env.NOTIFICATIONS_CHANNEL;
const KEEP = process.env.KEEP;
const SECRET = process.env.SECRET_KEY || crypto.randomBytes(32).toString("hex");

function sign(name) {
  return `${name}.${crypto.createHmac("sha256", SECRET).update(name).digest("base64url")}`;
}

function userOf(cookieHeader) {
  // Flask signs its session cookie; so does the reference (HMAC), and checks it on every connect.
  const match = /(?:^|;\s*)session=([\w.-]{1,32})\.([\w-]+)(?:;|$)/.exec(cookieHeader || "");
  if (!match) return null;
  const expected = Buffer.from(sign(match[1]));
  const given = Buffer.from(`${match[1]}.${match[2]}`);
  return expected.length === given.length && crypto.timingSafeEqual(expected, given) ? match[1] : null;
}

function checkText(text) {
  if (typeof text !== "string" || !text.trim()) throw new Error("the message is empty");
  if (text.length > MAX_TEXT) throw new Error(`the message is longer than ${MAX_TEXT} characters`);
  return text.trim();
}

async function main() {
  if (!process.env.REDIS_URL || !SCRIPT || !CHANNEL || !KEEP) {
    throw new Error("REDIS_URL, STORE_AND_PUBLISH, NOTIFICATIONS_CHANNEL and KEEP must be set (run.py sets them)");
  }
  const store = createClient({ url: process.env.REDIS_URL });
  const publisher = store.duplicate();
  const subscriber = store.duplicate();
  const announcements = store.duplicate();
  await Promise.all([store, publisher, subscriber, announcements].map((client) => client.connect()));

  const httpServer = http.createServer((request, response) => {
    if (request.method === "POST" && request.url === "/login") {
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", async () => {
        const name = new URLSearchParams(body).get("username") || "";
        if (!NAME.test(name)) {
          response.writeHead(400).end("bad name\n");
          return;
        }
        await store.sAdd("users", name);
        response.writeHead(302, { Location: "/", "Set-Cookie": `session=${sign(name)}; HttpOnly; Path=/` }).end();
      });
      return;
    }
    response.writeHead(200, { "Content-Type": "text/plain" }).end("reference server\n");
  });
  const io = new Server(httpServer);
  io.adapter(createAdapter(publisher, subscriber, { key: "bench-reference" }));

  // Like chapter 10's forward_notifications: each process delivers to its own tabs only.
  await announcements.subscribe(CHANNEL, (message) => {
    let notification;
    try {
      notification = JSON.parse(message);
      if (!NAME.test(notification.to) || !Number.isInteger(notification.id)) throw new Error("not a notification");
    } catch (error) {
      console.error(`ignored on ${CHANNEL}: ${message.slice(0, 80)}`);
      return;
    }
    io.local.to(`user:${notification.to}`).emit("notification", notification);
  });

  io.use((socket, next) => {
    const name = userOf(socket.handshake.headers.cookie);
    if (!name) return next(new Error("log in first"));
    socket.data.name = name;
    next();
  });

  io.on("connection", async (socket) => {
    const name = socket.data.name;
    socket.join(`user:${name}`);
    socket.on("send_notification", async (data, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      const { to, text } = data || {};
      let clean;
      try {
        if (!NAME.test(to || "")) throw new Error("a name is 1 to 32 letters, digits, '_', '.' or '-'");
        clean = checkText(text);
      } catch (error) {
        socket.emit("bad_input", { event: "send_notification", error: error.message });
        reply({ error: error.message });
        return;
      }
      const at = Math.floor(Date.now() / 1000);
      try {
        const id = await store.eval(SCRIPT, {
          keys: ["users", `notifications:${to}:seq`, `notifications:${to}`, CHANNEL],
          arguments: [to, name, clean, String(at), KEEP, "1"],
        });
        reply(id ? { id } : { error: `nobody called '${to}' has logged in yet` });
      } catch (error) {
        reply({ error: "notifications unavailable: cannot reach Redis" });
      }
    });
    // After the handlers: an event that arrives while Redis answers must find them.
    const lastId = (socket.handshake.auth || {}).last_id ?? 0;
    const after = Number.isInteger(lastId) && lastId >= 0 ? lastId : 0;
    try {
      const [missed, mark] = await Promise.all([
        store.xRange(`notifications:${name}`, `${after + 1}-0`, "+"),
        store.get(`notifications:${name}:read`),
      ]);
      socket.emit("status", { available: true });
      socket.emit("read", { read_up_to: Number(mark || 0) });
      for (const { id, message } of missed) {
        socket.emit("notification", { id: parseInt(id, 10), to: name, from: message.from, text: message.text,
                                      at: Number(message.at) });
      }
    } catch (error) {
      socket.emit("status", { available: false, error: "notifications unavailable: cannot reach Redis" });
    }
  });
  httpServer.listen(Number(process.env.PORT || 5000), process.env.HOST || "127.0.0.1");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
