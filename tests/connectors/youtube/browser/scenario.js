/*
 * The browser test's scenario: play, seek, pause, play to the end, then leave the page.
 * Expected statements (threshold 0.7, 120 s video): initialized, played 0, seeked 30->60,
 * played 60, paused 80, played 80, paused 120, completed (progress 0.75), terminated.
 */
(async function () {
  "use strict";
  var params = new URLSearchParams(location.search);
  var run = params.get("run");
  var endpoint = params.get("endpoint");
  var errors = [];
  function report(data) {
    data.run = run;
    return fetch("/test/report", {method: "POST", headers: {"Content-Type": "application/json"},
                                  body: JSON.stringify(data)});
  }
  try {
    var token = await (await fetch("/test/token")).text();
    var player = new YT.Player("video", {videoId: "M7lc1UVf-VE", duration: 120});
    var hour = 3600 * 1000;  // timers off: the scenario samples explicitly (deterministic)
    var tracker = LxhubYouTube.track(player, {
      endpoint: endpoint,
      token: function () { return token; },
      now: function () { return YT.clock.now(); },
      sampleMs: hour, heartbeatMs: hour, flushMs: hour,
      tokenTransport: params.get("transport") || "auto",
      onError: function (message) { errors.push(message); },
    });
    await player.whenReady();
    player.playVideo();          // PLAYING at 0
    player.advance(30);
    tracker.sample();            // what the 1 s timer does
    player.seekTo(60);           // BUFFERING, PLAYING at 60
    player.advance(20);
    tracker.sample();
    player.pauseVideo();         // PAUSED at 80
    player.playVideo();          // PLAYING at 80
    player.advance(40);          // ENDED at 120
    var status = await tracker.flush();
    await report({stage: "flushed", status: status, session: tracker.sessionId, errors: errors,
                  header: tracker._useHeader()});
    location.href = "/test/done.html?run=" + encodeURIComponent(run);  // pagehide: beacon
  } catch (e) {
    await report({stage: "error", message: String((e && e.stack) || e), errors: errors});
  }
})();
