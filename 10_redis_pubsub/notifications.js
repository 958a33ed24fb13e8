// The page's client logic, apart from the page: index.html runs it with a view that draws the
// list, and `make chaos` (chaos.py) runs the very same file under Node, with a view that
// records what each simulated tab showed. Nothing here touches the DOM.
(function (exports) {
  "use strict";

  const ANSWER_TIMEOUT = 5000;  // ms before a send counts as unanswered (and is sent again, same key)
  const RETRY_DELAYS = [250, 500, 1000, 2000, 5000];  // ms before sending again; the last repeats
  const SYNC_AGAIN = 1000;  // ms before asking again when the server said "try again" (Redis away, too many)
  const STALL = 3000;  // ms a request may wait for its answer before the page says it is waiting
  const WAITING = "waiting for the server…";
  const RESET = "the notification store was reset: older notifications are gone";
  const FULL_RETRY = 5000;  // ms before connecting again to a server that said it is full

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
   *   view.show(n), view.remove(id), view.read(readUpTo, unread), view.status(text, kind),
   *   view.stale(id) (shown, but the store no longer has it), view.notice(text) (what the page lost).
   * Each notification names the one stored before it (`prev`), so the page knows when
   * it missed one (ask for what follows the newest it holds in an unbroken run, `head`)
   * and when the store forgot what it had shown (start again from the store's newest);
   * it counts the user's notifications (`n`), so the page knows how many were trimmed.
   */
  function connectNotifications(io, view, { url, options = {}, keep = 100 } = {}) {
    let head = null;  // the newest id this page holds in an unbroken run; null: none yet, or starting again
    let generation = 0;  // +1 when the page starts again: answers to older requests are then ignored
    let readUpTo = "0-0", extra = 0, syncing = false, syncAgain = false, syncTimer = null;
    let said = { text: "connecting…", kind: "" }, waiting = 0;  // the status, and requests answered late
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
      shown.clear();
      head = null;
      extra = 0;
      generation += 1;
    }

    // The store no longer has what this page shows (Redis restarted empty or from an older snapshot,
    // or the page's newest id was never the store's): keep it on screen, marked, and say so.
    function storeReset() {
      for (const id of shown.keys()) view.stale(id);
      startAgain();
      view.notice(RESET);
    }

    // The status as the server last described it, unless a request has waited longer than STALL:
    // a stalled Redis or server must not look like health.
    function status(text, kind) {
      said = { text, kind };
      view.status(...(waiting > 0 && kind === "ok" ? [WAITING, "waiting"] : [text, kind]));
    }

    // Call when a request goes out; call what it returns once its answer is definite.
    function outstanding() {
      let late = false;
      const timer = setTimeout(() => { late = true; waiting += 1; status(said.text, said.kind); }, STALL);
      return () => {
        clearTimeout(timer);
        if (late) {
          waiting -= 1;
          status(said.text, said.kind);
        }
      };
    }

    function read(mark) {
      if (compare(mark, readUpTo) > 0) readUpTo = mark;
      view.read(readUpTo, [...shown.keys()].filter((id) => compare(id, readUpTo) > 0).length);
    }

    // A replay: the store's notifications after `after`, oldest first (the newest page if `after` is null).
    function replay({ after, unknown, notifications, more, read_up_to }, asked = generation) {
      if (asked !== generation) return;  // asked before the page started again
      if (unknown) storeReset();  // the store never gave the id this page asked after
      if (after === null) {
        for (const id of shown.keys()) view.remove(id);
        startAgain();
        head = "0-0";
      } else if (head === null || compare(after, head) > 0) {
        return;  // an answer for a page that has started again
      }
      let expected = after, expectedN = after === "0-0" ? 0 : shown.get(after)?.n;
      for (const n of notifications) {
        if (expected !== null && compare(n.prev, expected) < 0) {
          // Stored after something older than what this page holds: the store lost data.
          storeReset();
          sync();
          return;
        }
        if (expected !== null && compare(n.prev, expected) > 0 && compare(n.id, head) > 0) {
          // Stored after something newer than what this page holds: trimmed before the page could get it.
          const lost = n.n - expectedN - 1;
          view.notice(lost > 0 ? `${lost} older notification${lost === 1 ? " is" : "s are"} no longer kept`
                               : "older notifications are no longer kept");
        }
        expected = n.id;
        expectedN = n.n;
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
      const asked = generation, answered = outstanding();
      socket.timeout(ANSWER_TIMEOUT).emit("sync", head === null ? {} : { last_id: head }, (timeout, answer) => {
        syncing = false;
        answered();
        if (timeout || answer.error) {
          if (answer?.error) status(answer.error, "error");
          if (answer?.retry) syncSoon();
          syncAgain = syncAgain || (timeout && socket.connected);  // a lost answer: ask again
        } else {
          status("connected", "ok");
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
      if (compare(n.prev, head) < 0) storeReset();  // the store forgot what this page holds
      sync();  // a push went missing (or was trimmed): ask for exactly what follows `head`
    });
    socket.on("replay", (answer) => replay(answer));
    socket.on("read", ({ read_up_to }) => read(read_up_to));
    socket.on("resync", sync);  // Redis is back: fetch what was stored while nobody listened
    socket.on("status", ({ available, error }) => {
      if (available) return status("connected", "ok");
      status(error, "error");
      syncSoon();
    });
    socket.on("connect_error", (error) => {
      status(`refused: ${error.message}`, "error");
      // A refusal the server means as "not now" (full): Socket.IO does not retry it by itself.
      if (error.data && error.data.retry) setTimeout(() => socket.connect(), FULL_RETRY);
    });
    socket.on("disconnect", (reason) => status(`disconnected: ${reason}`, "error"));

    // Send until the answer is definite: stored (an id) or refused (an error that is not "try again").
    // Every attempt carries the same key, so the server stores the message once however often it arrives.
    function send(to, text, onState = () => {}) {
      const key = newKey(), answered = outstanding();
      return new Promise((resolve) => {
        function attempt(n) {
          if (!socket.connected) return socket.once("connect", () => attempt(n));
          socket.timeout(ANSWER_TIMEOUT).emit("send_notification", { to, text, key }, (timeout, answer) => {
            if (timeout || answer.retry) {
              onState("sending", n + 1);
              return setTimeout(() => attempt(n + 1), RETRY_DELAYS[Math.min(n, RETRY_DELAYS.length - 1)]);
            }
            answered();
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
