// The tabs and senders of `make chaos`, under Node: each tab runs the page's own logic
// (notifications.js) with the socket.io-client the page loads, and a view that records
// what it shows. Driven by chaos.py: a JSON configuration as argument, commands on
// stdin, one JSON event per line on stdout. Times are Date.now() milliseconds.
"use strict";
const readline = require("node:readline");
const { io } = require("socket.io-client");
const { connectNotifications } = require("../10_redis_pubsub/notifications.js");  // the page's own logic

const config = JSON.parse(process.argv[2]);
const out = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const connect = (url, cookie, view) => connectNotifications(io, view, {
  url, keep: config.keep, options: { extraHeaders: { Cookie: cookie }, reconnectionDelayMax: 1000 },
});

const tabs = config.tabs.map(({ user, url, cookie }, tab) => connect(url, cookie, {
  show: (n) => out({ e: "show", tab, user, id: n.id, text: n.text, t: Date.now() }),
  remove: (id) => out({ e: "remove", tab, id }),
  stale: (id) => out({ e: "stale", tab, id }),
  notice: (text) => out({ e: "notice", tab, text, t: Date.now() }),
  read() {},
  status: (text, kind) => out({ e: "status", tab, text, kind, t: Date.now() }),
}));

let pending = 0, sending = true;
const sender = ({ user, url, cookie }) => ({
  user, client: connect(url, cookie, { show() {}, remove() {}, stale() {}, notice() {}, read() {}, status() {} }),
  count: 0,
});
const senders = config.senders.map(sender), flooder = sender(config.flooder);

// One send through the page's own send(): "sending" until the answer is definite.
function send(sender, to) {
  const text = `${sender.user}#${sender.count++}`;
  const started = Date.now();
  let retries = 0;
  pending += 1;
  sender.client.send(to, text, (state, attempt) => { retries = attempt; }).then((answer) => {
    pending -= 1;
    out({ e: "sent", from: sender.user, to, text, t: started, done: Date.now(), retries, ...answer });
  });
}

const recipients = [...new Set(config.tabs.map((tab) => tab.user))];
let tick = 0;
setInterval(() => {  // every sender at a steady rate, each to the recipients in turn
  if (!sending) return;
  for (const sender of senders) send(sender, recipients[(tick + senders.indexOf(sender)) % recipients.length]);
  tick += 1;
}, 1000 / config.rate);

const commands = {
  drop() {  // every connection closed under the tabs' feet, as a network change would
    for (const { socket } of [...tabs, ...senders.map((s) => s.client), flooder.client]) socket.io.engine.close();
  },
  flood({ to, count }) {  // one more sender, as fast as it can
    for (let n = 0; n < count; n += 1) send(flooder, to);
  },
  offline({ user }) {  // every tab of one recipient goes away (a laptop shut)
    for (const [n, tab] of tabs.entries()) if (config.tabs[n].user === user) tab.socket.disconnect();
    out({ e: "offline", user, t: Date.now() });
  },
  online({ user }) {  // and comes back, asking for what follows the newest it holds
    for (const [n, tab] of tabs.entries()) if (config.tabs[n].user === user) tab.socket.connect();
  },
  stop() { sending = false; },
  drain() {  // once every send has a definite answer
    const check = setInterval(() => {
      if (pending === 0) {
        clearInterval(check);
        out({ e: "drained", t: Date.now() });
      }
    }, 50);
  },
};
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  commands[command.cmd](command);
});
out({ e: "ready", t: Date.now() });
