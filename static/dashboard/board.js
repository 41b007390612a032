/*
 * Floorview board page: connection state, data age, ticking clocks, filters and resyncs.
 *
 * htmx's ws extension (hx-ws-2) owns the socket: it connects, reconnects
 * and sends. This script applies the frames (through htmx.swap) and watches
 * the connection. Every frame opens with a line of JSON, its head (type,
 * epoch, seq, server time, live-at, health), read with JSON.parse; the
 * out-of-band swaps follow the line's end. The server checks the order of
 * what it sends (dashboard/frame_order.py) and sends a snapshot itself after
 * any gap, so frames are applied as they come; the page asks for a snapshot
 * only when it was hidden. Clocks tick here from timestamps, corrected by the
 * server's clock, so they cost no server traffic.
 */
(function () {
  "use strict";

  var board = document.getElementById("board");
  if (!board || typeof htmx === "undefined") {
    return;
  }

  // The page protocol this script speaks (dashboard/protocol.py, PROTOCOL_VERSION). A snapshot from a
  // server that speaks another one means a deploy happened since the page loaded: reload to get its script.
  var PROTOCOL = 4;
  // At most one such reload a minute (per tab): during a rolling deploy old and new servers answer in turn.
  var RELOAD_GUARD_MS = 60000;
  var RELOAD_KEY = "floorview:protocol-reload-at";
  var STALE_AFTER = parseFloat(board.dataset.staleAfter) || 5;
  // Longer than any gap between the worker's ticks: a socket this quiet is dead, even if still "open".
  var SILENCE_LIMIT_MS = Math.max(30000, STALE_AFTER * 6000);
  var RESYNC_TIMEOUT_MS = 5000;
  // The server closes a page that leaves too many bytes unread (4008); it learns what was read from
  // these acknowledgements, sent every few frames or after a large one, so they cost next to nothing.
  var ACK_EVERY_FRAMES = 16;
  var ACK_EVERY_CHARS = 256 * 1024;
  // Backoff starts over only after a connection stayed up this long: a server that accepts and
  // drops at once (its store is down, say) must not be hammered once a second by every page.
  var HEALTHY_AFTER_MS = 10000;
  var SPREAD_RETRIES = 5; // refusals in a row that follow the server's window alone
  var FILTER_NAMES = ["queue", "status", "campaign", "disposition"];
  var HTMX_RECONNECTS = [1006, 1011, 1012, 1013];
  // Close codes and source-health labels come from the server (dashboard/protocol.py), so the two
  // cannot drift apart. "Service restart" (4012) is for servers whose WebSocket library refuses 1012
  // (Daphne); the extension already comes back after a real 1012 by itself.
  var serverProtocol = JSON.parse(document.getElementById("board-protocol").textContent);
  var RESTARTS = serverProtocol.restarts;
  var REFUSALS = serverProtocol.refusals;
  var STATE_TEXT = {
    connecting: "Connecting…",
    loading: "Loading the board…",
    live: "Live",
    stale: "Connected, no live data",
    reconnecting: "Reconnecting…",
    offline: "Offline",
  };
  var HEALTH_TEXT = serverProtocol.health;
  var storageKey = "floorview:filters:" + board.dataset.slug;

  var connEl = document.getElementById("connection-state");
  var ageEl = document.getElementById("data-age");
  var healthEl = document.querySelector("#source-health .health-text");
  var healthDetailEl = document.querySelector("#source-health .health-detail");
  var staleBanner = document.getElementById("stale-banner");
  var form = document.getElementById("filters");

  var socketWrapper = null; // htmx's wrapper: send() and reconnect()
  var currentSocket = null; // the WebSocket htmx is using now
  var everOpened = false;
  var refused = false;
  var protocolReloadAsked = false;
  var retries = 0;
  var retryTimer = null;
  var openedAt = 0;
  var offsetMs = 0; // server clock minus browser clock
  var liveAt = null; // server epoch seconds when the upstream was last known live
  var lastFrameAt = Date.now();
  var resyncSentAt = 0;
  var framesReceived = 0; // on the current socket
  var framesAcked = 0;
  var charsSinceAck = 0;
  var dataStale = false;
  var lastHealth = "unknown";
  var lastHealthDetail = "";
  var workerSilent = false; // no frame at all for longer than STALE_AFTER: the health we hold is old news
  var loadingSnapshot = false; // a snapshot's first parts are in, not its last: the rows are not the board yet

  // -- connection state ------------------------------------------------------

  function setState(state, detail) {
    // data-state is the socket's; what the indicator shows must not call stale data live.
    var shown = state === "live" && dataStale ? "stale" : state;
    connEl.className = "conn conn-" + shown;
    connEl.dataset.state = state;
    connEl.querySelector(".conn-text").textContent = detail || STATE_TEXT[shown];
    board.dataset.connection = state;
  }

  // -- filters ---------------------------------------------------------------

  function formFilters() {
    var filters = emptyFilters();
    if (form) {
      FILTER_NAMES.forEach(function (name) {
        form.querySelectorAll('input[name="' + name + '"]:checked').forEach(function (input) {
          filters[name].push(input.value);
        });
      });
    }
    return filters;
  }

  function showFilters(filters) {
    if (!form) {
      return;
    }
    FILTER_NAMES.forEach(function (name) {
      var wanted = filters[name] || [];
      form.querySelectorAll('input[name="' + name + '"]').forEach(function (input) {
        input.checked = wanted.indexOf(input.value) >= 0;
      });
    });
  }

  function emptyFilters() {
    var filters = {};
    FILTER_NAMES.forEach(function (name) {
      filters[name] = [];
    });
    return filters;
  }

  function filterCount(filters) {
    return FILTER_NAMES.reduce(function (count, name) {
      return count + (filters[name] || []).length;
    }, 0);
  }

  function rememberFilters(filters) {
    var params = new URLSearchParams();
    FILTER_NAMES.forEach(function (name) {
      filters[name].forEach(function (value) {
        params.append(name, value);
      });
    });
    var query = params.toString();
    history.replaceState(history.state, "", location.pathname + (query ? "?" + query : "") + location.hash);
    try {
      localStorage.setItem(storageKey, JSON.stringify(filters));
    } catch (e) {
      // Private windows may refuse storage; the URL still carries the filters.
    }
    var count = filterCount(filters);
    document.getElementById("filter-summary").textContent = count ? "(" + count + " active)" : "";
  }

  function restoreFilters() {
    var params = new URLSearchParams(location.search);
    var fromUrl = FILTER_NAMES.some(function (name) {
      return params.has(name);
    });
    if (!fromUrl) {
      try {
        var saved = JSON.parse(localStorage.getItem(storageKey) || "null");
        if (saved && typeof saved === "object") {
          var restored = emptyFilters();
          FILTER_NAMES.forEach(function (name) {
            restored[name] = Array.isArray(saved[name]) ? saved[name] : [];
          });
          showFilters(restored);
        }
      } catch (e) {
        // A corrupt entry is ignored; the next change overwrites it.
      }
    }
    // Read back from the form: only choices that still exist on this board survive.
    rememberFilters(formFilters());
  }

  function onFilterChange() {
    var filters = formFilters();
    rememberFilters(filters);
    var message = { type: "filter" };
    FILTER_NAMES.forEach(function (name) {
      message[name] = filters[name];
    });
    send(message);
  }

  // -- the socket --------------------------------------------------------------

  // Every (re)connect carries the current filters, so a reconnect needs no extra round trip.
  htmx.createWebSocket = function (url) {
    var target = new URL(url, location.href);
    var params = new URLSearchParams(location.search);
    target.search = "";
    FILTER_NAMES.forEach(function (name) {
      params.getAll(name).forEach(function (value) {
        target.searchParams.append(name, value);
      });
    });
    // Which protocol this script speaks: a socket that does not say is taken for a page older than JSON heads.
    target.searchParams.set(serverProtocol.version_param, String(PROTOCOL));
    var socket = new WebSocket(target.toString(), []);
    socket.binaryType = htmx.config.wsBinaryType;
    currentSocket = socket;
    return socket;
  };

  function isOpen() {
    return currentSocket && currentSocket.readyState === WebSocket.OPEN && socketWrapper;
  }

  function send(message) {
    // Only on an open socket: a queued message would repeat what the reconnect URL already says.
    if (isOpen()) {
      socketWrapper.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function acknowledge(message) {
    framesReceived += 1;
    charsSinceAck += message.length || 0;
    if (framesReceived - framesAcked >= ACK_EVERY_FRAMES || charsSinceAck >= ACK_EVERY_CHARS) {
      if (send({ type: "ack", frames: framesReceived })) {
        framesAcked = framesReceived;
        charsSinceAck = 0;
      }
    }
  }

  function resync() {
    var now = Date.now();
    if (now - resyncSentAt < RESYNC_TIMEOUT_MS) {
      return; // One is on its way; asking again would only cost the server another snapshot.
    }
    if (send({ type: "resync" })) {
      resyncSentAt = now;
    }
  }

  function nextDelay() {
    // Full jitter, growing, capped: a fleet of pages must not come back in lockstep.
    var delay = Math.random() * Math.min(30000, 1000 * Math.pow(2, Math.min(retries, 5)));
    retries += 1;
    return delay;
  }

  // The extension's own reconnects (after abnormal closes) use the same backoff; its retry
  // count restarts on every open, ours only after a healthy spell.
  htmx.config.wsReconnectDelay = nextDelay;

  // A 4012 or 4011 close may name the window ("spread=<seconds>") over which the server wants the
  // pages it sends away to come back: it knows how many they are. Null when it names none.
  function closeSpread(reason) {
    var prefix = serverProtocol.spread_reason;
    if (!prefix || typeof reason !== "string" || reason.indexOf(prefix) !== 0) {
      return null;
    }
    var seconds = parseFloat(reason.slice(prefix.length));
    return isFinite(seconds) ? Math.min(Math.max(seconds, 0), 30) : null;
  }

  function reconnectLater(wrapper, delay) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () {
      if (!refused && (!currentSocket || currentSocket.readyState === WebSocket.CLOSED)) {
        wrapper.reconnect();
      }
    }, delay === undefined ? nextDelay() : delay);
  }

  document.body.addEventListener("htmx:wsConnecting", function () {
    setState(everOpened ? "reconnecting" : "connecting");
  });

  document.body.addEventListener("htmx:wsOpen", function (evt) {
    socketWrapper = evt.detail.socketWrapper;
    everOpened = true;
    openedAt = Date.now();
    resyncSentAt = 0;
    framesReceived = 0;
    framesAcked = 0;
    charsSinceAck = 0;
    lastFrameAt = Date.now();
    loadingSnapshot = false;
    // "Live" waits for the snapshot: an open socket alone shows nothing new.
  });

  document.body.addEventListener("htmx:wsClose", function (evt) {
    var closeEvent = evt.detail.event;
    if (closeEvent.target !== currentSocket) {
      return; // A socket we replaced on purpose.
    }
    var code = closeEvent.code;
    if (openedAt) {
      // For operators and tests: why the last socket that was open ended (failed attempts aside).
      board.dataset.lastClose = String(code);
      board.dataset.lastSpread = String(closeSpread(closeEvent.reason) || "");
    }
    if (openedAt && Date.now() - openedAt >= HEALTHY_AFTER_MS) {
      retries = 0;
    }
    openedAt = 0;
    if (REFUSALS[code]) {
      refused = true;
      setState("offline", REFUSALS[code]);
      return;
    }
    setState(navigator.onLine === false ? "offline" : "reconnecting");
    var spread = closeSpread(closeEvent.reason);
    if (RESTARTS.indexOf(code) >= 0) {
      // The server is being restarted or redeployed: come straight back (to another process), spread
      // over the window it names (its crowd at its handshake rate), else over a second, so a wall of
      // screens does not arrive in the same millisecond.
      reconnectLater(evt.detail.socketWrapper, Math.random() * (spread === null ? 1 : spread) * 1000);
      return;
    }
    if (spread !== null) {
      // Sent away as one of a crowd (4011): the server's window, not a doubling backoff, says when to come
      // back. The count still grows, and past SPREAD_RETRIES in a row the page's own backoff applies as well,
      // so a server that names a window and keeps refusing does not hold the page in a tight loop.
      var delay = Math.random() * spread * 1000;
      if (retries >= SPREAD_RETRIES) {
        delay = Math.max(delay, nextDelay());
      } else {
        retries += 1;
      }
      reconnectLater(evt.detail.socketWrapper, delay);
      return;
    }
    // The extension retries only after abnormal closes; a clean close (a server restart) is ours to retry.
    if (HTMX_RECONNECTS.indexOf(code) < 0) {
      reconnectLater(evt.detail.socketWrapper);
    }
  });

  // htmx's ws extension would hand each top-level element of a frame to oobSwap by itself, and
  // table rows only survive HTML parsing inside <template>s, which it does not open. So frames
  // are applied here with htmx.swap, which processes templated out-of-band swaps.
  document.body.addEventListener("htmx:wsBeforeMessage", function (evt) {
    evt.preventDefault();
    var message = evt.detail.message;
    acknowledge(message);
    if (typeof message !== "string") {
      return;
    }
    if (message.charAt(0) !== "{") {
      // A server older than JSON heads (a rolling deploy): its script is the one to run against it.
      reloadForProtocol(null);
      return;
    }
    var cut = message.indexOf("\n");
    var head;
    try {
      head = JSON.parse(cut < 0 ? message : message.slice(0, cut));
    } catch (err) {
      return;
    }
    if (!head || typeof head !== "object") {
      return;
    }
    lastFrameAt = Date.now();
    if (head.type === "snapshot" && reloadForProtocol(head.protocol)) {
      return;
    }
    var html = cut < 0 ? "" : message.slice(cut + 1);
    if (html) {
      htmx.swap(board, html, { swapStyle: "none", swapDelay: 0, settleDelay: 0, transition: false });
    }
    var isSnapshot = head.type === "snapshot" || head.type === "snapshot-part";
    if (isSnapshot && typeof head.part === "number" && typeof head.parts === "number" && head.part < head.parts) {
      // A large board's snapshot comes in parts (the first replaces the rows, the others add to them): until
      // the last is in the page shows part of the board, so it says it is loading, never "Live", and keeps
      // the meta of what it showed before (the server sends no delta until the snapshot is complete).
      loadingSnapshot = true;
      board.dataset.snapshot = "partial";
      setState("loading", STATE_TEXT.loading + " (" + head.part + " of " + head.parts + ")");
      afterRowsChanged();
      return;
    }
    showMeta(head);
    if (isSnapshot) {
      loadingSnapshot = false;
      board.dataset.snapshot = "complete";
      resyncSentAt = 0;
      setState("live");
    } else if (connEl.dataset.state !== "live" && isOpen()) {
      setState("live");
    }
    afterRowsChanged();
    tick();
  });

  // -- meta and rows -----------------------------------------------------------------

  // Return whether the page is reloading because the server speaks another protocol (VERSION; null: one
  // older than JSON heads, which this script cannot read) than this script.
  function reloadForProtocol(version) {
    if (version === undefined || version === PROTOCOL) {
      return false;
    }
    var last = 0;
    try {
      last = parseInt(window.sessionStorage.getItem(RELOAD_KEY) || "0", 10) || 0;
    } catch (err) {
      last = 0; // Storage refused (private window): the guard below then holds for this page only.
    }
    var now = Date.now();
    if (protocolReloadAsked || (now - last >= 0 && now - last < RELOAD_GUARD_MS)) {
      return false; // Reloaded a moment ago already: carry on with this script rather than loop.
    }
    protocolReloadAsked = true;
    try {
      window.sessionStorage.setItem(RELOAD_KEY, String(now));
    } catch (err) {
      // Nothing to keep the time in: a reload loop is still bounded by the server's backoff.
    }
    board.dataset.reloading = "protocol";
    window.location.reload();
    return true;
  }

  function number(value) {
    return typeof value === "number" && isFinite(value) ? value : null;
  }

  // Take in a frame's head. The #board-meta element (the server renders the page's own into it) keeps
  // the epoch and seq of what the page shows, for operators and tests to read.
  function showMeta(head) {
    var serverTime = number(head.server_time);
    if (serverTime !== null) {
      offsetMs = serverTime * 1000 - Date.now();
    }
    liveAt = number(head.live_at);
    var health = head.health && typeof head.health === "object" ? head.health : {};
    lastHealth = typeof health.state === "string" && health.state ? health.state : "unknown";
    lastHealthDetail = typeof health.detail === "string" ? health.detail : "";
    var meta = document.getElementById("board-meta");
    if (meta) {
      meta.dataset.kind = String(head.type);
      meta.dataset.epoch = typeof head.epoch === "string" ? head.epoch : "";
      meta.dataset.seq = String(typeof head.seq === "number" ? head.seq : 0);
      meta.dataset.serverTime = serverTime === null ? "" : String(serverTime);
      meta.dataset.liveAt = liveAt === null ? "" : String(liveAt);
      meta.dataset.healthState = lastHealth;
      meta.dataset.healthDetail = lastHealthDetail;
    }
    showHealth();
  }

  // The page starts from the #board-meta element the server rendered into it.
  function readMeta() {
    var meta = document.getElementById("board-meta");
    if (!meta) {
      return;
    }
    var serverTime = parseFloat(meta.dataset.serverTime);
    if (!isNaN(serverTime)) {
      offsetMs = serverTime * 1000 - Date.now();
    }
    var live = parseFloat(meta.dataset.liveAt);
    liveAt = isNaN(live) ? null : live;
    lastHealth = meta.dataset.healthState || "unknown";
    lastHealthDetail = meta.dataset.healthDetail || "";
    showHealth();
  }

  function sortBody(tbody) {
    var rows = Array.prototype.slice.call(tbody.rows);
    function compare(a, b) {
      var x = a.dataset.sort || "";
      var y = b.dataset.sort || "";
      if (x !== y) {
        return x < y ? -1 : 1;
      }
      return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    }
    for (var i = 1; i < rows.length; i++) {
      if (compare(rows[i - 1], rows[i]) > 0) {
        // New rows arrive at the end; put them where they belong (rare, so a full sort is fine).
        rows.sort(compare).forEach(function (row) {
          tbody.appendChild(row);
        });
        return;
      }
    }
  }

  function afterRowsChanged() {
    document.querySelectorAll("[data-empty-for]").forEach(function (note) {
      var tbody = document.getElementById(note.dataset.emptyFor);
      if (tbody) {
        sortBody(tbody);
        note.hidden = tbody.rows.length > 0;
      }
    });
  }

  // -- clocks ----------------------------------------------------------------------

  function formatDuration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function formatAge(seconds) {
    if (seconds < 60) {
      return Math.max(0, Math.round(seconds)) + " s";
    }
    if (seconds < 3600) {
      return Math.round(seconds / 60) + " min";
    }
    return Math.round(seconds / 3600) + " h";
  }

  function tickClocks(nowMs) {
    document.querySelectorAll("#board .clock").forEach(function (clock) {
      var since = parseInt(clock.dataset.since, 10);
      var cell = clock.parentNode;
      if (isNaN(since)) {
        clock.textContent = "–";
        cell.classList.remove("level-warning", "level-alert");
        var idleFlag = cell.querySelector(".flag");
        if (idleFlag) {
          idleFlag.hidden = true;
        }
        return;
      }
      var elapsed = (nowMs - since) / 1000;
      clock.textContent = formatDuration(elapsed);
      if (!clock.dataset.warningAfter && !clock.dataset.alertAfter) {
        return;
      }
      // A waiting contact grows older without any event: its threshold is judged here, every second.
      var warning = parseFloat(clock.dataset.warningAfter) || 0;
      var alert = parseFloat(clock.dataset.alertAfter) || 0;
      var level = alert && elapsed >= alert ? "alert" : warning && elapsed >= warning ? "warning" : "ok";
      cell.classList.toggle("level-warning", level === "warning");
      cell.classList.toggle("level-alert", level === "alert");
      var flag = cell.querySelector(".flag");
      if (flag) {
        flag.hidden = level === "ok";
        var text = level === "alert" ? "◆ Alert" : level === "warning" ? "▲ Warning" : "";
        if (flag.textContent !== text) {
          flag.textContent = text;
        }
      }
    });
  }

  function showHealth() {
    var health = workerSilent ? "unknown" : lastHealth;
    healthEl.textContent = HEALTH_TEXT[health] || health.replace(/_/g, " ");
    healthEl.parentNode.className = "health health-" + health;
    // What a supervisor can act on ("retrying in 8 s", "token request refused"), only when not live.
    var detail = workerSilent ? "no word from the server's worker" : health === "live" ? "" : lastHealthDetail;
    healthDetailEl.textContent = detail ? ": " + detail : "";
    healthDetailEl.hidden = !detail;
  }

  function tickAge(nowMs) {
    var silent = nowMs - lastFrameAt > STALE_AFTER * 1000;
    if (silent !== workerSilent) {
      workerSilent = silent;
      showHealth();
    }
    var age = liveAt === null ? null : nowMs / 1000 - liveAt;
    var stale = age === null || age > STALE_AFTER;
    if (stale !== dataStale) {
      dataStale = stale;
      if (connEl.dataset.state === "live") {
        setState("live");
      }
    }
    board.classList.toggle("is-stale", stale);
    ageEl.classList.toggle("age-stale", stale);
    if (age === null) {
      ageEl.textContent = "No live data yet";
    } else {
      ageEl.textContent = (stale ? "Stale: " : "Updated ") + formatAge(age) + " ago";
    }
    staleBanner.hidden = !stale;
    if (stale) {
      var text =
        age === null
          ? "No live data yet: waiting for the contact-centre feed."
          : "Data is " + formatAge(age) + " old: figures may be out of date.";
      var target = staleBanner.querySelector(".stale-text");
      if (target.textContent !== text) {
        target.textContent = text;
      }
    }
  }

  function tick() {
    var nowMs = Date.now() + offsetMs;
    tickClocks(nowMs);
    tickAge(nowMs);
    if (isOpen() && Date.now() - lastFrameAt > SILENCE_LIMIT_MS) {
      // Not even a tick for a long while: the socket is dead without knowing it.
      lastFrameAt = Date.now();
      setState("reconnecting");
      socketWrapper.reconnect();
    }
  }

  // -- wiring ----------------------------------------------------------------------------

  if (form) {
    form.addEventListener("change", onFilterChange);
    document.getElementById("clear-filters").addEventListener("click", function () {
      showFilters(emptyFilters());
      onFilterChange();
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      // Timers were throttled while hidden: start again from a full picture.
      resyncSentAt = 0;
      resync();
      tick();
    }
  });

  window.addEventListener("offline", function () {
    setState("offline");
  });
  window.addEventListener("online", function () {
    if (isOpen() && !loadingSnapshot) {
      setState("live");
    } else if (socketWrapper && !refused) {
      setState("reconnecting");
      retries = 0;
      reconnectLater(socketWrapper);
    }
  });

  restoreFilters();
  readMeta();
  afterRowsChanged();
  tick();
  setInterval(tick, 1000);
})();
