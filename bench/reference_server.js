// The reference: Node.js Socket.IO 4.8 doing chapter 10's work, with Socket.IO's defaults
// (notably perMessageDeflate: false, so it declines the compression browsers offer).
//
//   PORT=5000 REDIS_URL=redis://127.0.0.1:6379 STORE_SCRIPT="$(lua)" REGISTER_SCRIPT="$(lua)" \
//   NOTIFICATIONS_CHANNEL=notifications KEEP=1000 PAGE=100 KEY_TTL=86400 REGISTERING=3 node reference_server.js
//
// run.py sets these from chapter 10's notification_store.py, so the two cannot drift apart.
// The same work as chapter 10 (10_redis_pubsub/README.md, "How a notification travels"),
// in the same Redis, with the same keys, events and payloads:
//   POST /login (form field "username")  checks the name as chapter 10 does, registers it with chapter 10's
//                                         REGISTER_SCRIPT and sets a signed cookie;
//   connect, auth {last_id}              joins the room "user:<name>", registers the name again, then sends
//                                         "replay" {after, notifications, more, read_up_to} (a page of 100
//                                         after last_id, or the newest 100) and "status" {available: true};
//   "send_notification" {to, text, key}  runs chapter 10's own STORE_SCRIPT with the same KEYS and ARGV
//                                         (stored in the stream with its idempotency key, then the doorbell
//                                         {to, id} on the channel; no rate limit, as the bench runs chapter
//                                         10 with FLASK_RATE_LIMIT=null), acknowledges {id} or why not;
//   a doorbell on the channel             every process that holds a tab of the recipient reads the
//                                         notification from the stream by its id (XRANGE id id) and
//                                         delivers it to its own tabs, as chapter 10's forward_notifications;
//   emits to a room across processes      @socket.io/redis-adapter (Flask-SocketIO's message queue).
// Not here, since the load generator never sends them: "sync", "older", "mark_read".
"use strict";
const crypto = require("node:crypto");
const http = require("node:http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const NAME = /^[a-z0-9_-]{1,32}$/;
const RESERVED = new Set(["admin", "administrator", "root", "system", "publisher", "server", "support", "null"]);
const ID = /^\d{1,15}-\d{1,15}$/;
const KEY = /^[A-Za-z0-9_-]{8,64}$/;
const MAX_TEXT = 500;
const UNAVAILABLE = "notifications unavailable: cannot reach Redis";
const { STORE_SCRIPT, REGISTER_SCRIPT, NOTIFICATIONS_CHANNEL: CHANNEL, KEEP, KEY_TTL, REGISTERING } = process.env;
const PAGE = Number(process.env.PAGE);
const SECRET = process.env.SECRET_KEY || crypto.randomBytes(32).toString("hex");

function sign(name) {
  return `${name}.${crypto.createHmac("sha256", SECRET).update(name).digest("base64url")}`;
}

function userOf(cookieHeader) {
  // Flask signs its session cookie; so does the reference (HMAC), and checks it on every connect.
  const match = /(?:^|;\s*)session=([a-z0-9_-]{1,32})\.([\w-]+)(?:;|$)/.exec(cookieHeader || "");
  if (!match) return null;
  const expected = Buffer.from(sign(match[1]));
  const given = Buffer.from(`${match[1]}.${match[2]}`);
  return expected.length === given.length && crypto.timingSafeEqual(expected, given) ? match[1] : null;
}

// Chapter 10's checks (notification_store.py), with its words.
function checkName(name) {
  const clean = typeof name === "string" && /^[\x00-\x7f]*$/.test(name) ? name.trim().toLowerCase() : "";
  if (!NAME.test(clean)) throw new Error("a name is 1 to 32 letters (a-z), digits, '_' or '-'");
  return clean;
}

function checkText(text) {
  if (typeof text !== "string" || !text.trim()) throw new Error("the message is empty");
  if (text.length > MAX_TEXT) throw new Error(`the message is longer than ${MAX_TEXT} characters`);
  return text.trim();
}

function checkId(value, what) {
  if (typeof value !== "string" || !ID.test(value)) {
    throw new Error(`'${what}' must be a notification id such as '1700000000000-0'`);
  }
  return value;
}

function checkKey(key) {
  if (typeof key !== "string" || !KEY.test(key)) {
    throw new Error("'key' must be 8 to 64 letters, digits, '_' or '-', made once per message");
  }
  return key;
}

function notification(name, { id, message }) {
  return { id, prev: message.prev, n: Number(message.n || 0), to: name, from: message.from, text: message.text,
           at: Number(id.split("-")[0]) / 1000 };
}

// notification_store.compare: stream ids as two numbers.
function older(a, b) {
  const [am, an] = a.split("-").map(Number), [bm, bn] = b.split("-").map(Number);
  return am < bm || (am === bm && an < bn);
}

async function main() {
  const wanted = ["REDIS_URL", "STORE_SCRIPT", "REGISTER_SCRIPT", "NOTIFICATIONS_CHANNEL", "KEEP", "PAGE", "KEY_TTL",
                  "REGISTERING"];
  if (wanted.some((name) => !process.env[name])) throw new Error(`${wanted.join(", ")} must be set (run.py sets them)`);
  const store = createClient({ url: process.env.REDIS_URL });
  const publisher = store.duplicate();
  const subscriber = store.duplicate();
  const doorbells = store.duplicate();
  await Promise.all([store, publisher, subscriber, doorbells].map((client) => client.connect()));

  const register = (...names) => store.eval(REGISTER_SCRIPT, { keys: ["users", "users:since"], arguments: names });

  // notification_store.knows: an id this store gave (stored, or older than everything kept: trimmed).
  async function knows(name, id) {
    const key = `notifications:${name}`;
    const kept = await store.xRange(key, "-", "+", { COUNT: 1 });
    return id === "0-0" || (await store.xRange(key, id, id)).length > 0 || (kept.length > 0 && older(id, kept[0].id));
  }

  // app.replay: a page after `after` (the newest page if null, or if the store never gave `after`).
  async function replay(name, asked) {
    const key = `notifications:${name}`;
    const unknown = asked !== null && !(await knows(name, asked));
    const after = unknown ? null : asked;
    let entries, more = false;
    if (after === null) {
      entries = (await store.xRevRange(key, "+", "-", { COUNT: PAGE })).reverse();
    } else {
      entries = await store.xRange(key, `(${after}`, "+", { COUNT: PAGE + 1 });
      more = entries.length > PAGE;
    }
    const readUpTo = (await store.get(`notifications:${name}:read`)) || "0-0";
    return { after, unknown, notifications: entries.slice(0, PAGE).map((entry) => notification(name, entry)), more,
             read_up_to: readUpTo };
  }

  const httpServer = http.createServer((request, response) => {
    if (request.method === "POST" && request.url === "/login") {
      const origin = request.headers.origin;
      if (origin !== undefined && origin !== `http://${request.headers.host}`) {
        response.writeHead(403).end("log in from this site's own page\n");
        return;
      }
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", async () => {
        let name;
        try {
          name = checkName(new URLSearchParams(body).get("username") || "");
          if (RESERVED.has(name)) throw new Error(`${name} is a reserved name: choose another`);
        } catch (error) {
          response.writeHead(400).end(`${error.message}\n`);
          return;
        }
        try {
          await register(name);
        } catch (error) {
          response.writeHead(503).end(`${UNAVAILABLE}\n`);
          return;
        }
        response.writeHead(302, { Location: "/", "Set-Cookie": `session=${sign(name)}; HttpOnly; Path=/` }).end();
      });
      return;
    }
    response.writeHead(200, { "Content-Type": "text/plain" }).end("reference server\n");
  });
  const io = new Server(httpServer);
  io.adapter(createAdapter(publisher, subscriber, { key: "bench-reference" }));

  // Like chapter 10's forward_notifications: a doorbell names a stored notification; a process with a tab
  // of the recipient reads it from the stream and delivers it to its own tabs only.
  await doorbells.subscribe(CHANNEL, async (message) => {
    let to, id;
    try {
      ({ to, id } = JSON.parse(message));
      to = checkName(to);
      id = checkId(id, "id");
    } catch (error) {
      console.error(`ignored on ${CHANNEL}: not a doorbell: ${message.slice(0, 80)}`);
      return;
    }
    const room = `user:${to}`;
    if (!io.of("/").adapter.rooms.has(room)) return;
    const [entry] = await store.xRange(`notifications:${to}`, id, id);
    if (entry) io.local.to(room).emit("notification", notification(to, entry));
  });

  io.use((socket, next) => {
    const name = userOf(socket.handshake.headers.cookie);
    if (!name) return next(new Error("log in first"));
    socket.data.name = name;
    next();
  });

  io.on("connection", async (socket) => {
    const name = socket.data.name;
    const reject = (event, problem) => {
      socket.emit("bad_input", { event, error: problem });
      return { error: problem };
    };
    socket.join(`user:${name}`);
    socket.on("send_notification", async (data, ack) => {
      const reply = typeof ack === "function" ? ack : () => {};
      if (data === null || typeof data !== "object" || Array.isArray(data)) {
        return reply(reject("send_notification", "send an object {to, text, key}"));
      }
      let to, text, key;
      try {
        to = checkName(data.to);
        text = checkText(data.text);
        key = checkKey(data.key);
      } catch (error) {
        return reply(reject("send_notification", error.message));
      }
      let outcome, detail;
      try {
        // notification_store.store, limit=None: the same KEYS and ARGV, rate limit 0 (none).
        [outcome, detail] = await store.eval(STORE_SCRIPT, {
          keys: ["users", `notifications:${to}`, `notifications:sent:${name}:${key}`, `notifications:rate:${name}`,
                 CHANNEL, "users:since"],
          arguments: [to, name, text, KEEP, "1", "0", "1", KEY_TTL, REGISTERING],
        });
      } catch (error) {
        return reply({ error: UNAVAILABLE, retry: true });
      }
      if (outcome === "stored") return reply({ id: detail });
      if (outcome === "forgotten") return reply({ error: UNAVAILABLE, retry: true });
      if (outcome === "reused") {
        return reply(reject("send_notification", "this key was used for another message: make a new key for each message"));
      }
      const started = new Date(Number(detail) * 1000).toISOString().slice(0, 16).replace("T", " ");
      return reply(reject("send_notification",
                          `nobody called '${to}' has logged in since this notification store started (${started} UTC)`));
    });
    // After the handlers: an event that arrives while Redis answers must find them.
    const auth = socket.handshake.auth;
    let after = null;
    try {
      if (auth !== null && auth !== undefined && (typeof auth !== "object" || Array.isArray(auth))) {
        throw new Error("send an object {last_id}");
      }
      const lastId = (auth || {}).last_id;
      after = lastId === undefined || lastId === null ? null : checkId(lastId, "last_id");
    } catch (error) {
      reject("connect", error.message);  // the newest page again is safe: the page shows each notification once
    }
    try {
      await register(name);  // again: Redis may have lost its users
      socket.emit("replay", await replay(name, after));
    } catch (error) {
      socket.emit("status", { available: false, error: UNAVAILABLE });
      return;
    }
    socket.emit("status", { available: true });
  });
  httpServer.listen(Number(process.env.PORT || 5000), process.env.HOST || "127.0.0.1");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
