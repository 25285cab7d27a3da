/*
 * A stand-in for https://www.youtube.com/iframe_api (the real one needs the internet).
 *
 * `new YT.Player(elementId, {videoId, duration, events})` behaves like the real player where the
 * tracker can tell: the getters appear and `onReady` fires asynchronously; `onStateChange`
 * carries YT.PlayerState values; a seek while playing goes BUFFERING (3) then PLAYING (1); the
 * end of the video is ENDED (0). Time is simulated: `YT.clock.now()` only moves when the test
 * calls `player.advance(seconds)`, so positions and wall times are exact.
 */
(function (global) {
  "use strict";

  var clock = {ms: Date.now(), now: function () { return this.ms; }};

  function Player(elementId, options) {
    var self = this;
    var o = options || {};
    this._videoId = o.videoId || "M7lc1UVf-VE";
    this._duration = o.duration || 120;
    this._t = 0;
    this._state = -1;
    this._rate = 1;
    this._volume = 100;
    this._muted = false;
    this._listeners = {};
    var events = o.events || {};
    Object.keys(events).forEach(function (name) { self.addEventListener(name, events[name]); });
    this._ready = new Promise(function (resolve) {
      setTimeout(function () {
        // Like the real API, the getters exist only once the player is ready.
        self.getCurrentTime = function () { return self._t; };
        self.getDuration = function () { return self._duration; };
        self.getPlaybackRate = function () { return self._rate; };
        self.getPlayerState = function () { return self._state; };
        self.getVideoUrl = function () { return "https://www.youtube.com/watch?v=" + self._videoId; };
        self.getVolume = function () { return self._volume; };
        self.isMuted = function () { return self._muted; };
        self._emit("onReady", {target: self});
        resolve(self);
      }, 0);
    });
    var el = global.document.getElementById(elementId);
    if (el) el.setAttribute("data-fake-player", this._videoId);
  }

  Player.prototype.addEventListener = function (name, fn) {
    (this._listeners[name] = this._listeners[name] || []).push(fn);
  };

  Player.prototype._emit = function (name, data) {
    var event = typeof data === "object" && data !== null && "target" in data ? data : {target: this, data: data};
    (this._listeners[name] || []).forEach(function (fn) { fn(event); });
  };

  Player.prototype._setState = function (state) {
    this._state = state;
    this._emit("onStateChange", state);
  };

  Player.prototype.whenReady = function () { return this._ready; };

  Player.prototype.playVideo = function () {
    if (this._state === 0) this._t = 0;  // replay after the end
    this._setState(1);
  };

  Player.prototype.pauseVideo = function () { this._setState(2); };

  Player.prototype.seekTo = function (seconds) {
    this._t = Math.max(0, Math.min(this._duration, seconds));
    if (this._state === 1) {
      this._setState(3);
      this._setState(1);
    }
  };

  Player.prototype.setPlaybackRate = function (rate) {
    this._rate = rate;
    this._emit("onPlaybackRateChange", rate);
  };

  Player.prototype.setVolume = function (volume) { this._volume = volume; };

  // Test control: let `seconds` of wall time pass; the position moves while PLAYING.
  Player.prototype.advance = function (seconds) {
    clock.ms += seconds * 1000;
    if (this._state !== 1) return;
    this._t = Math.min(this._duration, this._t + seconds * this._rate);
    if (this._t >= this._duration) this._setState(0);
  };

  global.YT = {
    Player: Player,
    PlayerState: {UNSTARTED: -1, ENDED: 0, PLAYING: 1, PAUSED: 2, BUFFERING: 3, CUED: 5},
    clock: clock,
  };
  if (typeof global.onYouTubeIframeAPIReady === "function") {
    setTimeout(global.onYouTubeIframeAPIReady, 0);
  }
})(window);
