// The load generator: the same browser-like Socket.IO clients for every server.
//
//   node loadgen.js '{"urls": ["http://127.0.0.1:5000"], "scenarios": [{"name": "fanout", "clients": 200}]}'
//
// Clients are socket.io-client 4.8 over WebSocket, logged in as chapter 10's page is (POST
// /login, then the session cookie on the connection); a client counts as connected once it has
// its "replay" (what it missed, sent on connect); it sends "send_notification" {to, text, key}
// (a new key per message) and receives "notification" events {id: "<ms>-<n>", prev, to, from,
// text, at}. The reference server speaks the same protocol. Like a browser, each one OFFERS
// permessage-deflate (the `ws` package's default); what the server answered is
// reported as `extensions` ("permessage-deflate" when it accepted, "" when it declined).
//
// Output: one JSON object per line on stdout. {"mark": "start"} and {"mark": "end"}
// bracket the measured phase, so the runner can read the server's CPU time at both;
// {"mark": "holding"} (connections scenario) means "all connected, measure the server's
// memory now, then write a line to my stdin (or close it)"; {"mark": "step"} reports each
// step of the capacity scenario; the last line is {"result": {...}}.
// Scenarios: roundtrip, throughput, fanout, connections (one process); redis (fanout over
// several), steady (end-to-end latency under a steady load), capacity (steady, more users
// each step). With "spread_addresses", clients connect from 127.0.k.1 (see connect()).
// The generator stops by itself, at the latest on its own deadline.
"use strict";
const { performance } = require("node:perf_hooks");
const { io } = require("socket.io-client");

const config = JSON.parse(process.argv[2]);
const NOTE = "see you at the station at six?";
// Names no earlier run used: chapter 10 keeps notifications in Redis and replays them on connect.
const RUN = `${process.pid}x${Date.now().toString(36)}`;
const cookies = new Map(); // "url name" -> cookie

function say(line) {
  process.stdout.write(JSON.stringify(line) + "\n");
}

function fail(message) {
  process.stderr.write(`loadgen: ${message}\n`);
  process.exit(2);
}

// How long a login or a connection may take: a server that never answers fails its step instead of hanging it.
const PATIENCE_MS = 20000;

setTimeout(() => fail(`gave up after ${config.deadline_s || 120} s`), (config.deadline_s || 120) * 1000).unref();

async function logIn(url, name) {
  // Once per user and server: its session cookie, as a browser gets it from the login form.
  const key = `${url} ${name}`;
  if (!cookies.has(key)) {
    const response = await fetch(`${url}/login`, {
      method: "POST",
      body: new URLSearchParams({ username: name }),
      redirect: "manual",
      signal: AbortSignal.timeout(PATIENCE_MS),
    }).catch((error) => {
      throw new Error(`${url}: login as ${name}: ${error.message}`);
    });
    const cookie = response.headers.get("set-cookie");
    if (response.status !== 302 || !cookie) throw new Error(`${url}: login as ${name} answered ${response.status}`);
    cookies.set(key, cookie.split(";")[0]);
  }
  return cookies.get(key);
}

// With `spread_addresses` (one URL: nginx), connection k comes from its own loopback address
// 127.0.<k mod 240 + 1>.1: nginx's ip_hash keys on the first three bytes, and consecutive
// ones go to consecutive processes, so the clients spread over them as real users would.
let opened = 0;

async function connect(url, name) {
  const cookie = await logIn(url, name);
  const localAddress = config.spread_addresses ? `127.0.${(opened % 240) + 1}.1` : undefined;
  opened += 1;
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ["websocket"], // the connection a browser upgrades to; polling is not measured
      forceNew: true,
      reconnection: false,
      timeout: PATIENCE_MS,
      extraHeaders: { Cookie: cookie },
      localAddress,
    });
    // Connected, as a page is, once it has its replay: both servers send it from their connect handler.
    // The client's own timeout ends at the WebSocket's opening: a connect never answered after it would wait forever.
    const unanswered = setTimeout(() => {
      socket.close();
      reject(new Error(`${url}: no replay within ${PATIENCE_MS / 1000} s`));
    }, PATIENCE_MS).unref(); // after a refusal, it must not keep the generator alive
    socket.once("replay", () => {
      clearTimeout(unanswered);
      resolve(socket);
    });
    socket.once("connect_error", (error) => reject(new Error(`${url}: ${error.message}`)));
    socket.once("status", ({ available, error }) => available || reject(new Error(`${url}: ${error}`)));
  });
}

async function connectAll(urls, name, count, batch) {
  // In batches: a burst of hundreds of connects would overflow a listen backlog of 50 (eventlet's).
  const sockets = [];
  for (let i = 0; i < count; i += batch) {
    const size = Math.min(batch, count - i);
    const next = Array.from({ length: size }, (_, j) => connect(urls[(i + j) % urls.length], name));
    sockets.push(...(await Promise.all(next)));
  }
  return sockets;
}

async function connectUsers(urls, names, tabs, batch) {
  // Each user's `tabs` tabs, one after the other (so with two processes, a user's tabs are on both).
  const wanted = names.flatMap((name) => Array.from({ length: tabs }, () => name));
  const sockets = [];
  for (let i = 0; i < wanted.length; i += batch) {
    const next = wanted.slice(i, i + batch).map((name, j) => connect(urls[(i + j) % urls.length], name));
    sockets.push(...(await Promise.all(next)));
  }
  return sockets;
}

async function logInAll(url, names, batch) {
  for (let i = 0; i < names.length; i += batch) await Promise.all(names.slice(i, i + batch).map((n) => logIn(url, n)));
}

function extensionsOf(socket) {
  return socket.io.engine.transport.ws.extensions; // what the server's handshake accepted
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function notify(socket, to, text) {
  return new Promise((resolve, reject) =>
    // key: chapter 10 stores a message once per key (a retry of an unanswered send); one per message.
    socket.emit("send_notification", { to, text, key: crypto.randomUUID() }, (answer) =>
      answer && answer.id ? resolve(answer) : reject(new Error(`send_notification: ${JSON.stringify(answer)}`))));
}


// Steady load: `rate` notifications a second, each from a random user's first tab to another
// random user, for `seconds`. A notification's end-to-end latency runs from the sender's emit
// to the moment the LAST of the recipient's tabs has it (stored, announced on Redis, delivered
// by every process holding one of those tabs). Returns p50, p99, max and how many never arrived.
async function steadyLoad(users, tabsOf, rate, seconds) {
  const expected = new Map(); // "stamp" -> tabs still waiting
  const latencies = [];
  const refusals = [];
  let lost = 0;
  let refused = 0;
  const onNotification = ({ text }) => {
    const stamp = text.split(" ", 1)[0];
    const waiting = expected.get(stamp);
    if (waiting === undefined) return; // an earlier step's
    if (waiting === 1) {
      expected.delete(stamp);
      latencies.push(performance.now() - parseFloat(stamp));
    } else expected.set(stamp, waiting - 1);
  };
  const listening = users.flatMap((user) => tabsOf.get(user));
  for (const socket of listening) socket.on("notification", onNotification);
  const started = performance.now();
  let sent = 0;
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      const due = Math.min(rate * seconds, Math.floor(((now - started) / 1000) * rate));
      for (; sent < due; sent++) {
        const from = users[Math.floor(Math.random() * users.length)];
        let to = users[Math.floor(Math.random() * users.length)];
        if (to === from) to = users[(users.indexOf(from) + 1) % users.length];
        const stamp = `${performance.now()}#${sent}`; // unique, and parseFloat reads the time
        expected.set(stamp, tabsOf.get(to).length);
        notify(tabsOf.get(from)[0], to, `${stamp} ${NOTE}`).catch((error) => {
          // Refused (the server could not store it in time): counted, and not waited for.
          refused += 1;
          if (!refusals.includes(error.message)) refusals.push(error.message);
          expected.delete(stamp);
        });
      }
      if (sent >= rate * seconds) {
        clearInterval(tick);
        resolve();
      }
    }, 2);
  });
  // Stragglers: up to 5 s more (anything later counts as lost).
  const deadline = performance.now() + 5000;
  while (expected.size && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  lost = expected.size;
  for (const socket of listening) socket.off("notification", onNotification);
  latencies.sort((a, b) => a - b);
  return {
    notifications: latencies.length,
    sent_per_s: (sent * 1000) / (performance.now() - started),
    p50_ms: percentile(latencies, 50) ?? 0,
    p99_ms: percentile(latencies, 99) ?? 0,
    max_ms: latencies.length ? latencies[latencies.length - 1] : 0,
    lost,
    refused,
    refusals: refusals.join("; "),
  };
}

function tabsByUser(names, tabs, sockets) {
  const tabsOf = new Map(names.map((name, i) => [name, sockets.slice(i * tabs, (i + 1) * tabs)]));
  return tabsOf;
}

// Each scenario: set up, then `measure(work)` brackets the measured phase.
let current = null; // the scenario running now, named in the marks

async function measure(work) {
  say({ mark: "start", scenario: current });
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  say({ mark: "end", scenario: current });
  return { ...result, seconds, loadgen_cpu: (used.user + used.system) / 1e6 / seconds };
}

const scenarios = {
  async roundtrip({ urls, count = 500, warmup = 50 }) {
    // Alice notifies Carol, who is known (logged in once) but offline: the round trip alone.
    const carol = `carol${RUN}`;
    await logIn(urls[0], carol);
    const [socket] = await connectAll(urls, `alice${RUN}`, 1, 1);
    for (let i = 0; i < warmup; i++) await notify(socket, carol, NOTE);
    const result = await measure(async () => {
      const times = [];
      for (let i = 0; i < count; i++) {
        const sent = performance.now();
        await notify(socket, carol, NOTE);
        times.push(performance.now() - sent);
      }
      times.sort((a, b) => a - b);
      return { p50_ms: percentile(times, 50), p99_ms: percentile(times, 99) };
    });
    return { ...result, extensions: extensionsOf(socket), sockets: [socket] };
  },

  async throughput({ urls, clients = 20, inflight = 10, per_client = 100 }) {
    const carol = `carol${RUN}`;
    await logIn(urls[0], carol);
    const sockets = await connectAll(urls, `alice${RUN}`, clients, clients);
    const result = await measure(async () => {
      // Each client keeps `inflight` acknowledged emits outstanding until it has sent `per_client`.
      const client = async (socket) => {
        let sent = 0;
        const lane = async () => {
          while (sent < per_client) {
            sent += 1;
            await notify(socket, carol, NOTE);
          }
        };
        await Promise.all(Array.from({ length: inflight }, lane));
      };
      const started = performance.now();
      await Promise.all(sockets.map(client));
      return { acks_per_s: (clients * per_client * 1000) / (performance.now() - started) };
    });
    return { ...result, extensions: extensionsOf(sockets[0]), sockets };
  },

  async fanout({ urls, clients = 200, broadcasts = 200, window = 10, batch = 25 }) {
    // Bob has `clients` tabs open, spread over `urls` (two servers: half on each); Alice, on the
    // first server, notifies him `broadcasts` times. A notification is done when all of Bob's
    // tabs have it; `window` of them are in flight at once. The text carries the send time.
    const bob = `bob${RUN}`;
    const sockets = await connectAll(urls, bob, clients, batch);
    const [alice] = await connectAll(urls, `alice${RUN}`, 1, 1);
    const latencies = [];
    const received = new Map();
    let finish;
    const finished = new Promise((resolve) => (finish = resolve));
    let sent = 0;
    let done = 0;
    let last = 0;
    const send = () => {
      if (sent >= broadcasts) return;
      sent += 1;
      notify(alice, bob, `${performance.now()} ${NOTE}`).catch((error) => fail(error.message));
    };
    for (const socket of sockets) {
      socket.on("notification", ({ id, text }) => {
        last = performance.now();
        latencies.push(last - parseFloat(text));
        const count = (received.get(id) || 0) + 1;
        received.set(id, count);
        if (count === clients) {
          done += 1;
          if (done === broadcasts) finish();
          else send();
        }
      });
    }
    const result = await measure(async () => {
      const started = performance.now();
      for (let i = 0; i < Math.min(window, broadcasts); i++) send();
      await finished;
      latencies.sort((a, b) => a - b);
      return {
        deliveries_per_s: (latencies.length * 1000) / (last - started),
        p50_ms: percentile(latencies, 50),
        p99_ms: percentile(latencies, 99),
      };
    });
    return { ...result, extensions: extensionsOf(sockets[0]), sockets: [...sockets, alice] };
  },

  async redis(options) {
    // Scenario 3 across the processes: through Redis, and through nginx when there is one.
    return scenarios.fanout(options);
  },

  async steady({ urls, users = 1000, tabs = 2, rate = 200, seconds = 5, batch = 50 }) {
    const names = Array.from({ length: users }, (_, i) => `u${i}x${RUN}`);
    await logInAll(urls[0], names, batch);
    const sockets = await connectUsers(urls, names, tabs, batch);
    const result = await measure(() => steadyLoad(names, tabsByUser(names, tabs, sockets), rate, seconds));
    return { ...result, extensions: extensionsOf(sockets[0]), sockets };
  },

  async capacity({ urls, steps, rate = 200, seconds = 3, batch = 50, limit_ms = 100 }) {
    // More and more users (one tab each), a steady load at each step, until p99 passes the limit
    // or a connection fails: the last step under the limit is the capacity.
    const names = [];
    const sockets = [];
    let held = { users: 0, p99_ms: 0 };
    let stoppedBy = "last step";
    const result = await measure(async () => {
      for (const step of steps) {
        const more = Array.from({ length: step - names.length }, (_, i) => `c${names.length + i}x${RUN}`);
        try {
          await logInAll(urls[0], more, batch);
          sockets.push(...(await connectUsers(urls, more, 1, batch)));
        } catch (error) {
          stoppedBy = `connecting ${step}: ${error.message}`;
          break;
        }
        names.push(...more);
        const load = await steadyLoad(names, tabsByUser(names, 1, sockets), rate, seconds);
        say({ mark: "step", users: step, p99_ms: load.p99_ms, lost: load.lost, refused: load.refused });
        if (load.p99_ms >= limit_ms || load.lost || load.refused) {
          const lost = load.lost ? `, ${load.lost} lost` : "";
          const refused = load.refused ? `, ${load.refused} refused` : "";
          stoppedBy = `p99 ${Math.round(load.p99_ms)} ms at ${step}${lost}${refused}`;
          break;
        }
        held = { users: step, p99_ms: load.p99_ms };
      }
      return { ...held, stopped_by: stoppedBy };
    });
    return { ...result, sockets };
  },

  async connections({ urls, clients = 1000, batch = 25 }) {
    const result = await measure(async () => {
      const started = performance.now();
      const sockets = await connectAll(urls, `dave${RUN}`, clients, batch);
      return { connect_s: (performance.now() - started) / 1000, sockets };
    });
    // Every connection is open: the runner measures the server's memory, then answers.
    say({ mark: "holding" });
    await new Promise((resolve) => process.stdin.once("data", resolve).once("end", resolve));
    return { ...result, extensions: extensionsOf(result.sockets[0]) };
  },
};

async function main() {
  const results = {};
  for (const { name, ...options } of config.scenarios) {
    const scenario = scenarios[name];
    if (!scenario) fail(`unknown scenario ${name}`);
    current = name;
    const { sockets, ...result } = await scenario({ urls: config.urls, ...options });
    for (const socket of sockets) socket.disconnect();
    results[name] = result;
  }
  say({ result: results });
  process.exit(0);
}

main().catch((error) => fail(error.stack || error.message));
