/*!
 * lxhub-youtube.js: reports YouTube IFrame Player events to an lxhub `youtube` connector
 * instance, which turns them into xAPI Video Profile statements (vendors.md 4.1, 4.5, 4.6).
 *
 * Usage (the embedding page owns the player and the learner's session):
 *
 *   <script src="https://hub.example.com/static/lxhub-youtube.js"></script>
 *   <script>
 *     function onYouTubeIframeAPIReady() {
 *       var player = new YT.Player("video", {videoId: "7lCDEYXw3mM"});
 *       LxhubYouTube.track(player, {
 *         endpoint: "https://hub.example.com/webhooks/youtube-learn",
 *         token: function () { return window.LEARNER_TOKEN; },  // issued by your backend
 *       });
 *     }
 *   </script>
 *
 * Or auto-attach every <iframe data-lxhub-track src=".../embed/ID?enablejsapi=1"> by giving the
 * script tag data-endpoint and data-token (or data-token-function: a global function's name).
 *
 * What it sends: batches {session_id, video_id, page_url, player, sent_at, events[]} where
 * every event has a per-session `seq`. State changes are sent as they happen, a heartbeat every
 * 10 s while playing; the position is sampled every second so a seek (there is no seek event)
 * is reported with the last position before the jump. Batches go out with fetch (the learner
 * token in an Authorization header when the hub is same-origin or tokenTransport is "header",
 * else in the JSON body as `token`, which needs no CORS preflight) and, when the page is hidden
 * or unloaded, with navigator.sendBeacon (token in the body: beacons cannot set headers).
 * Delivery is at least once; the hub ignores sequence numbers it has already seen.
 *
 * Never put learner identity in YouTube parameters: identity travels only in the token.
 */
(function (global) {
  "use strict";

  var VERSION = "0.1.0";
  var PLAYING = 1;
  var MAX_QUEUE = 2000;
  var MAX_BEACON_BYTES = 60000;
  var MAX_ATTEMPTS = 5;
  var DEFAULTS = {
    heartbeatMs: 10000,
    sampleMs: 1000,
    flushMs: 5000,
    maxBatch: 100,
    seekTolerance: 1.5,
    tokenTransport: "auto", // "auto" | "header" | "body"
    pageUrl: null,
    videoId: null,
    now: null,
    onError: null,
  };

  function uuid4() {
    var c = global.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    var b = new Uint8Array(16);
    c.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); });
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") +
      "-" + h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }

  function videoIdFromUrl(url) {
    if (!url) return null;
    var m = /[?&]v=([A-Za-z0-9_-]{11})/.exec(url) || /\/embed\/([A-Za-z0-9_-]{11})/.exec(url);
    return m ? m[1] : null;
  }

  function round3(x) { return Math.round(x * 1000) / 1000; }

  function sameOrigin(endpoint) {
    try { return new URL(endpoint, global.location.href).origin === global.location.origin; }
    catch (e) { return false; }
  }

  function call(player, name, fallback) {
    try {
      return typeof player[name] === "function" ? player[name]() : fallback;
    } catch (e) {
      return fallback;
    }
  }

  function Tracker(player, options) {
    var o = {};
    var k;
    for (k in DEFAULTS) o[k] = DEFAULTS[k];
    for (k in options || {}) o[k] = options[k];
    if (!o.endpoint) throw new Error("LxhubYouTube.track: `endpoint` is required");
    if (!o.token) throw new Error("LxhubYouTube.track: `token` is required");
    this.player = player;
    this.o = o;
    this.now = typeof o.now === "function" ? o.now : function () { return Date.now(); };
    this.queue = [];     // events not yet sent
    this.unacked = [];   // events sent by fetch whose answer has not come back
    this.inflight = null;
    this.timers = [];
    this.stopped = false;
    this.lastState = -1;
    this.lastSample = null;   // {t, wall}: the newest position the tracker looked at
    this.lastReport = null;   // {t, wall}: the newest position it reported
    this.volume = null;
    this.muted = null;
    this.backoffUntil = 0;
    this.lastStatus = 0;
    this.failures = 0;
    this._newSession(o.videoId || videoIdFromUrl(call(player, "getVideoUrl", "")));
    this._listen();
  }

  Tracker.prototype._newSession = function (videoId) {
    this.sessionId = uuid4();
    this.videoId = videoId;
    this.seq = 0;
    this.ready = false;
  };

  Tracker.prototype._token = function () {
    var t = this.o.token;
    return typeof t === "function" ? t() : t;
  };

  Tracker.prototype._position = function () {
    return round3(Number(call(this.player, "getCurrentTime", 0)) || 0);
  };

  Tracker.prototype._rate = function () {
    return Number(call(this.player, "getPlaybackRate", 1)) || 1;
  };

  Tracker.prototype._push = function (type, fields, wall) {
    if (this.stopped || !this.videoId) return;
    var at = wall === undefined ? this.now() : wall;
    var ev = {seq: this.seq++, type: type, client_ts: new Date(at).toISOString()};
    for (var k in fields || {}) if (fields[k] !== undefined && fields[k] !== null) ev[k] = fields[k];
    if (typeof ev.t === "number") this.lastReport = {t: ev.t, wall: at};
    this.queue.push(ev);
    if (this.queue.length > MAX_QUEUE) this.queue.splice(0, this.queue.length - MAX_QUEUE);
  };

  Tracker.prototype._ready = function () {
    if (this.ready) return;
    this.ready = true;
    var d = Number(call(this.player, "getDuration", 0)) || 0;
    this._push("ready", {duration: d > 0 ? round3(d) : undefined});
  };

  // Looks at the position; a jump beyond the tolerance is reported as the last position seen
  // before it (a heartbeat at that time), so the hub knows where the seek started.
  Tracker.prototype.sample = function () {
    if (this.stopped) return;
    var wall = this.now();
    var t = this._position();
    var last = this.lastSample;
    if (last) {
      var expected = this.lastState === PLAYING ? last.t + ((wall - last.wall) / 1000) * this._rate() : last.t;
      var jumped = Math.abs(t - expected) > this.o.seekTolerance;
      var unreported = !this.lastReport || this.lastReport.wall < last.wall;
      if (jumped && unreported) this._push("heartbeat", {t: last.t, rate: this._rate()}, last.wall);
      if (jumped) this._push("heartbeat", {t: t, rate: this._rate()}, wall);
    }
    this.lastSample = {t: t, wall: wall};
    this._pollVolume();
  };

  Tracker.prototype._pollVolume = function () {
    var v = call(this.player, "getVolume", null);
    var m = call(this.player, "isMuted", null);
    if (this.volume !== null && v !== null && v !== this.volume) {
      this._push("volume", {volume: Math.round(v), t: this._position()});
    }
    if (this.muted !== null && m !== null && m !== this.muted) {
      this._push("mute", {muted: !!m, volume: v === null ? undefined : Math.round(v), t: this._position()});
    }
    this.volume = v;
    this.muted = m;
  };

  Tracker.prototype.heartbeat = function () {
    if (this.lastState !== PLAYING) return;
    this.sample();
    this._push("heartbeat", {t: this._position(), rate: this._rate()});
  };

  Tracker.prototype._onReady = function () {
    this._ready();
    this.sample();
  };

  Tracker.prototype._onStateChange = function (e) {
    var state = e && typeof e.data === "number" ? e.data : Number(call(this.player, "getPlayerState", -1));
    var current = videoIdFromUrl(call(this.player, "getVideoUrl", "")) || this.videoId;
    if (current && current !== this.videoId) {
      // Another video in the same player: end this session, start one for the new video.
      this._push("unload", {t: this.lastSample ? this.lastSample.t : undefined});
      this.flush();
      this._newSession(current);
      this.lastSample = null;
      this.lastReport = null;
    }
    if (!this.ready) this._ready();
    this.sample();
    var fields = {state: state, t: this._position()};
    if (state === PLAYING) fields.rate = this._rate();
    var d = Number(call(this.player, "getDuration", 0)) || 0;
    if (d > 0) fields.duration = round3(d);
    this._push("state", fields);
    this.lastState = state;
    this.lastSample = {t: fields.t, wall: this.now()};
    if (state !== PLAYING && state !== 3) this.flush();  // paused, ended: report promptly
  };

  Tracker.prototype._onRate = function (e) {
    this.sample();
    this._push("rate", {rate: e && e.data ? e.data : this._rate(), t: this._position()});
  };

  Tracker.prototype._onQuality = function (e) {
    if (e && e.data) this._push("quality", {quality: String(e.data).slice(0, 32), t: this._position()});
  };

  Tracker.prototype._onError = function (e) {
    // 101/150: not embeddable; 153: missing Referer. No statement; the hub only logs it.
    this._push("error", {code: e && typeof e.data === "number" ? e.data : -1, t: this._position()});
    this.flush();
  };

  Tracker.prototype._listen = function () {
    var self = this;
    var p = this.player;
    function on(name, fn) {
      if (typeof p.addEventListener === "function") p.addEventListener(name, fn);
    }
    on("onReady", function () { self._onReady(); });
    on("onStateChange", function (e) { self._onStateChange(e); });
    on("onPlaybackRateChange", function (e) { self._onRate(e); });
    on("onPlaybackQualityChange", function (e) { self._onQuality(e); });
    on("onError", function (e) { self._onError(e); });
    // A player that is already ready has its getters; onReady will not fire again.
    if (typeof p.getDuration === "function" && typeof p.getCurrentTime === "function") this._onReady();

    this.timers.push(setInterval(function () { self.sample(); }, this.o.sampleMs));
    this.timers.push(setInterval(function () { self.heartbeat(); }, this.o.heartbeatMs));
    this.timers.push(setInterval(function () { self.flush(); }, this.o.flushMs));

    this._onHide = function () {
      if (global.document.visibilityState === "hidden") self.beacon();
    };
    this._onPageHide = function () { self.end(); };
    this._onFullscreen = function () {
      var el = global.document.fullscreenElement;
      var iframe = typeof p.getIframe === "function" ? p.getIframe() : null;
      self._push("fullscreen", {fullscreen: !!el && (!iframe || el === iframe || el.contains(iframe)), t: self._position()});
    };
    global.document.addEventListener("visibilitychange", this._onHide);
    global.addEventListener("pagehide", this._onPageHide);
    global.document.addEventListener("fullscreenchange", this._onFullscreen);
  };

  Tracker.prototype._batch = function (events, withToken) {
    var body = {
      session_id: this.sessionId,
      video_id: this.videoId,
      page_url: this.o.pageUrl || (global.location.origin + global.location.pathname),
      player: {
        origin: global.location.origin,
        user_agent: (global.navigator.userAgent || "").slice(0, 512),
        screen_size: global.screen ? global.screen.width + "x" + global.screen.height : undefined,
      },
      sent_at: new Date(this.now()).toISOString(),
      events: events,
    };
    if (withToken) body.token = this._token();
    return body;
  };

  Tracker.prototype._useHeader = function () {
    var mode = this.o.tokenTransport;
    return mode === "header" || (mode === "auto" && sameOrigin(this.o.endpoint));
  };

  // Sends queued events with fetch. Resolves, once they are all sent, to the HTTP status of
  // the last request (0: a network error, or nothing was ever sent).
  Tracker.prototype.flush = function () {
    var self = this;
    if (this.inflight) {
      return this.inflight.then(function (status) { return self.queue.length ? self.flush() : status; });
    }
    if (!this.queue.length || this.now() < this.backoffUntil) return Promise.resolve(this.lastStatus);
    var events = this.queue.splice(0, this.o.maxBatch);
    this.unacked = events;
    var header = this._useHeader();
    var headers = {"Content-Type": header ? "application/json" : "text/plain;charset=UTF-8"};
    if (header) headers.Authorization = "Bearer " + this._token();
    this.inflight = global.fetch(this.o.endpoint, {
      method: "POST",
      headers: headers,
      body: JSON.stringify(this._batch(events, !header)),
      keepalive: true,
      credentials: "omit",
      mode: "cors",
    }).then(function (res) {
      self.inflight = null;
      self.lastStatus = res.status;
      self.failures = 0;
      if (res.status >= 500 || res.status === 429) throw new Error("hub answered " + res.status);
      self.unacked = [];
      if (res.status >= 400) self._fail("the hub refused the batch (" + res.status + ")");
      return res.status;
    }).catch(function (err) {
      // Keep the events (same seq numbers) for the next attempt; the hub de-duplicates. A
      // cross-origin 401/403 also lands here (no CORS headers on refusals), so give up on a
      // batch after a few attempts instead of retrying it forever.
      self.inflight = null;
      self.failures += 1;
      if (self.failures < MAX_ATTEMPTS) self.queue = self.unacked.concat(self.queue);
      else self.failures = 0;
      self.unacked = [];
      self.backoffUntil = self.now() + 5000 * self.failures;
      self.lastStatus = 0;
      self._fail(err && err.message ? err.message : "network error");
      return 0;
    });
    return this.inflight;
  };

  // Sends everything not yet acknowledged with sendBeacon (page hidden or gone).
  Tracker.prototype.beacon = function () {
    var events = this.unacked.concat(this.queue);
    if (!events.length) return true;
    var ok = true;
    var nav = global.navigator;
    while (events.length) {
      var n = Math.min(events.length, this.o.maxBatch);
      var body = JSON.stringify(this._batch(events.slice(0, n), true));
      while (body.length > MAX_BEACON_BYTES && n > 1) {
        n = Math.ceil(n / 2);
        body = JSON.stringify(this._batch(events.slice(0, n), true));
      }
      var sent = false;
      if (nav && typeof nav.sendBeacon === "function") {
        try { sent = nav.sendBeacon(this.o.endpoint, body); } catch (e) { sent = false; }
      }
      if (!sent) {
        global.fetch(this.o.endpoint, {method: "POST", body: body, keepalive: true, credentials: "omit",
          headers: {"Content-Type": "text/plain;charset=UTF-8"}}).catch(function () {});
      }
      ok = ok && sent;
      events = events.slice(n);
    }
    this.queue = [];
    this.unacked = [];
    return ok;
  };

  // Ends the session (pagehide): the last position, an `unload`, everything sent by beacon.
  Tracker.prototype.end = function () {
    if (this.stopped) return;
    this.sample();
    this._push("unload", {t: this._position()});
    this.beacon();
    this.stop();
  };

  Tracker.prototype.stop = function () {
    this.stopped = true;
    this.timers.forEach(clearInterval);
    this.timers = [];
    global.document.removeEventListener("visibilitychange", this._onHide);
    global.removeEventListener("pagehide", this._onPageHide);
    global.document.removeEventListener("fullscreenchange", this._onFullscreen);
  };

  Tracker.prototype._fail = function (message) {
    if (typeof this.o.onError === "function") {
      try { this.o.onError(message); } catch (e) { /* the page's handler must not break us */ }
    } else if (global.console) {
      global.console.warn("lxhub-youtube: " + message);
    }
  };

  function track(player, options) {
    return new Tracker(player, options);
  }

  // <script src=".../lxhub-youtube.js" data-endpoint="..." data-token="..."> attaches to every
  // <iframe data-lxhub-track> once the IFrame API is ready (chaining any existing callback).
  function autoAttach(options) {
    var trackers = [];
    function attach() {
      var frames = global.document.querySelectorAll("iframe[data-lxhub-track]");
      Array.prototype.forEach.call(frames, function (frame) {
        if (frame.__lxhub) return;
        frame.__lxhub = true;
        var player = new global.YT.Player(frame, {});
        var opts = {};
        for (var k in options) opts[k] = options[k];
        opts.videoId = opts.videoId || videoIdFromUrl(frame.src);
        trackers.push(track(player, opts));
      });
    }
    if (global.YT && global.YT.Player) {
      attach();
    } else {
      var previous = global.onYouTubeIframeAPIReady;
      global.onYouTubeIframeAPIReady = function () {
        if (typeof previous === "function") previous();
        attach();
      };
    }
    return trackers;
  }

  var api = {version: VERSION, track: track, autoAttach: autoAttach, Tracker: Tracker};
  global.LxhubYouTube = api;

  var script = global.document && global.document.currentScript;
  if (script && script.getAttribute("data-endpoint")) {
    var tokenFn = script.getAttribute("data-token-function");
    api.autoAttach({
      endpoint: script.getAttribute("data-endpoint"),
      token: tokenFn ? function () { return global[tokenFn](); } : script.getAttribute("data-token"),
    });
  }
})(window);
