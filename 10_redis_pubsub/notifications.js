// The page's client logic, apart from the page: index.html runs it with a view that draws the
// list, and `make chaos` (chaos.py) runs the very same file under Node, with a view that
// records what each simulated tab showed. Nothing here touches the DOM.
(function (exports) {
  "use strict";

  const ANSWER_TIMEOUT = 5000;  // ms before a send counts as unanswered (and is sent again, same key)
  const RETRY_DELAYS = [250, 500, 1000, 2000, 5000];  // ms before sending again; the last repeats
  const SYNC_AGAIN = 1000;  // ms before asking again when the server said "try again" (Redis away, too many)

  // Ids are "<milliseconds>-<n>" (Redis stream ids): compare them as two numbers.
  function compare(a, b) {
    const [am, an] = a.split("-").map(Number), [bm, bn] = b.split("-").map(Number);
    return am - bm || an - bn;
  }

  // A send's idempotency key: random, made once per message (crypto.randomUUID needs HTTPS off localhost).
  function newKey() {
    return Array.from(globalThis.crypto.getRandomValues(new Uint8Array(16)),
                      (byte) => byte.toString(16).padStart(2, "0")).join("");
  }

  /**
   * Connect to the notifications and keep `view` up to date:
   *   view.show(n), view.remove(id), view.read(readUpTo, unread), view.status(text, kind).
   * Each notification names the one stored before it (`prev`), so the page knows when
   * it missed one (ask for what follows the newest it holds in an unbroken run, `head`)
   * and when the store forgot what it had shown (start again from the store's newest).
   */
  function connectNotifications(io, view, { url, options = {}, keep = 100 } = {}) {
    let head = null;  // the newest id this page holds in an unbroken run; null: none yet, or starting again
    let generation = 0;  // +1 when the page starts again: answers to older requests are then ignored
    let readUpTo = "0-0", extra = 0, syncing = false, syncAgain = false, syncTimer = null;
    const shown = new Map();  // id -> notification, the newest `keep` (+ `extra` older ones asked for)
    const socket = io(url, { ...options, auth: (send) => send(head === null ? {} : { last_id: head }) });

    function show(n) {
      if (shown.has(n.id)) return;
      shown.set(n.id, n);
      view.show(n);
      const ids = [...shown.keys()].sort(compare);
      for (const id of ids.slice(0, Math.max(ids.length - keep - extra, 0))) {
        shown.delete(id);
        view.remove(id);
      }
    }

    function startAgain() {
      for (const id of shown.keys()) view.remove(id);
      shown.clear();
      head = null;
      extra = 0;
      generation += 1;
    }

    function read(mark) {
      if (compare(mark, readUpTo) > 0) readUpTo = mark;
      view.read(readUpTo, [...shown.keys()].filter((id) => compare(id, readUpTo) > 0).length);
    }

    // A replay: the store's notifications after `after`, oldest first (the newest page if `after` is null).
    function replay({ after, notifications, more, read_up_to }, asked = generation) {
      if (asked !== generation) return;  // asked before the page started again
      if (after === null) {
        startAgain();
        head = "0-0";
      } else if (head === null || compare(after, head) > 0) {
        return;  // an answer for a page that has started again
      }
      let expected = after;
      for (const n of notifications) {
        if (expected !== null && compare(n.prev, expected) < 0) {
          // Stored after something older than what this page holds: the store lost data.
          startAgain();
          sync();
          return;
        }
        expected = n.id;
        if (compare(n.id, head) > 0) {
          show(n);
          head = n.id;
        }
      }
      read(read_up_to);
      if (more) sync();
    }

    // One request at a time; asked again while one is out, it runs once more after it.
    function sync() {
      if (syncing) {
        syncAgain = true;
        return;
      }
      syncing = true;
      const asked = generation;
      socket.timeout(ANSWER_TIMEOUT).emit("sync", head === null ? {} : { last_id: head }, (timeout, answer) => {
        syncing = false;
        if (timeout || answer.error) {
          if (answer?.error) view.status(answer.error, "error");
          if (answer?.retry) syncSoon();
          syncAgain = syncAgain || (timeout && socket.connected);  // a lost answer: ask again
        } else {
          view.status("connected", "ok");
          replay(answer, asked);
        }
        if (syncAgain) {
          syncAgain = false;
          sync();
        }
      });
    }

    // Nothing else would tell a page that Redis is reachable again for it (its server's subscriber
    // may never have lost Redis): ask again a moment later, until an answer comes.
    function syncSoon() {
      if (syncTimer === null) syncTimer = setTimeout(() => { syncTimer = null; sync(); }, SYNC_AGAIN);
    }

    socket.on("notification", (n) => {
      if (head === null) return sync();  // the first replay is on its way, or the page starts again
      if (compare(n.id, head) <= 0) return;  // shown already (a replay and a push, or a doorbell rung twice)
      if (n.prev === head) {
        show(n);
        head = n.id;
        return read(readUpTo);
      }
      if (compare(n.prev, head) < 0) startAgain();  // the store forgot what this page holds
      sync();  // a push went missing: ask for exactly what follows `head`
    });
    socket.on("replay", (answer) => replay(answer));
    socket.on("read", ({ read_up_to }) => read(read_up_to));
    socket.on("resync", sync);  // Redis is back: fetch what was stored while nobody listened
    socket.on("status", ({ available, error }) => {
      if (available) return view.status("connected", "ok");
      view.status(error, "error");
      syncSoon();
    });
    socket.on("connect_error", (error) => view.status(`refused: ${error.message}`, "error"));
    socket.on("disconnect", (reason) => view.status(`disconnected: ${reason}`, "error"));

    // Send until the answer is definite: stored (an id) or refused (an error that is not "try again").
    // Every attempt carries the same key, so the server stores the message once however often it arrives.
    function send(to, text, onState = () => {}) {
      const key = newKey();
      return new Promise((resolve) => {
        function attempt(n) {
          if (!socket.connected) return socket.once("connect", () => attempt(n));
          socket.timeout(ANSWER_TIMEOUT).emit("send_notification", { to, text, key }, (timeout, answer) => {
            if (timeout || answer.retry) {
              onState("sending", n + 1);
              return setTimeout(() => attempt(n + 1), RETRY_DELAYS[Math.min(n, RETRY_DELAYS.length - 1)]);
            }
            resolve(answer);
          });
        }
        onState("sending", 0);
        attempt(0);
      });
    }

    function markRead() {
      if (head !== null) socket.emit("mark_read", { up_to: head }, () => {});
    }

    function showOlder() {
      const ids = [...shown.keys()].sort(compare);
      if (!ids.length) return Promise.resolve(false);
      const asked = generation;
      return new Promise((resolve) => socket.emit("older", { before: ids[0] }, (answer) => {
        if (answer.error || asked !== generation) return resolve(false);
        extra += answer.notifications.length;
        answer.notifications.forEach(show);
        read(readUpTo);
        resolve(answer.more);
      }));
    }

    return { socket, send, markRead, showOlder, shown, head: () => head };
  }

  exports.connectNotifications = connectNotifications;
  exports.compare = compare;
})(typeof module === "object" ? module.exports : (window.Notifications = {}));
