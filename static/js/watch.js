/* Guichet watch page: countdown, viewer session, heartbeat, HLS playback.
 *
 * The page asks Guichet for a screen (POST .../session), plays the playlist URL it gets
 * back (the viewer credential is in its path, so every segment request carries it), and
 * sends a heartbeat at the interval the server names. A heartbeat answered
 * "playing_elsewhere" means a newer screen took the ticket: the player stops, says so,
 * and offers "Watch here instead", which takes the ticket back the same way.
 */
(function () {
  "use strict";

  var root = document.getElementById("watch");
  if (!root) {
    return;
  }
  var video = document.getElementById("player");
  var statusBox = document.getElementById("watch-status");
  var countdown = document.getElementById("countdown");
  var watchHere = document.getElementById("watch-here");
  var msg = root.dataset;
  var hls = null;
  var playlist = null;
  var heartbeatTimer = null;
  var stopped = false;

  function say(text, bad) {
    statusBox.textContent = text;
    statusBox.hidden = !text;
    statusBox.classList.toggle("notice-bad", Boolean(bad));
  }

  function post(url) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (body) {
          return { ok: response.ok, status: response.status, body: body };
        });
    });
  }

  function stop(text, code) {
    stopped = true;
    root.dataset.state = "stopped";
    if (heartbeatTimer) {
      clearTimeout(heartbeatTimer);
    }
    if (hls) {
      hls.destroy();
      hls = null;
    }
    video.pause();
    video.removeAttribute("src");
    video.load();
    video.hidden = true;
    playlist = null;
    say(text, true);
    watchHere.hidden = code !== "playing_elsewhere";
  }

  function startPlayback() {
    video.play().then(
      function () {
        say(msg.msgPlaying, false);
      },
      function () {
        // Autoplay with sound is blocked until the viewer interacts: play muted instead.
        video.muted = true;
        video.play().then(function () {
          say(msg.msgMuted, false);
        }, function () {});
      }
    );
  }

  function play(url) {
    if (url === playlist) {
      return;
    }
    playlist = url;
    video.hidden = false;
    root.dataset.state = "playing";
    if (window.Hls && window.Hls.isSupported()) {
      if (!hls) {
        // No worker: the page's CSP allows scripts from 'self' only, not blob: workers.
        hls = new window.Hls({ enableWorker: false });
        hls.attachMedia(video);
        hls.on(window.Hls.Events.MANIFEST_PARSED, startPlayback);
        hls.on(window.Hls.Events.ERROR, function (_event, data) {
          if (data.fatal && !stopped) {
            say(msg.msgReconnecting, true);
            if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) {
              hls.recoverMediaError();
            } else {
              setTimeout(function () {
                if (hls && !stopped) {
                  hls.loadSource(playlist);
                }
              }, 3000);
            }
          }
        });
      }
      hls.loadSource(url);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url;
      video.addEventListener("loadedmetadata", startPlayback, { once: true });
    } else {
      stop(msg.msgUnsupported);
    }
  }

  function scheduleHeartbeat(seconds) {
    heartbeatTimer = setTimeout(heartbeat, Math.max(1, seconds) * 1000);
  }

  function answer(result) {
    if (stopped) {
      return;
    }
    if (!result.ok) {
      var code = result.body.code;
      stop(code === "playing_elsewhere" ? msg.msgElsewhere : result.body.detail || msg.msgError, code);
      return;
    }
    if (result.body.playlist) {
      play(result.body.playlist);
    } else {
      say(msg.msgNoUrl, false);
    }
    scheduleHeartbeat(result.body.heartbeat_seconds || 30);
  }

  function heartbeat() {
    post(msg.heartbeatUrl).then(answer, function () {
      say(msg.msgReconnecting, true);
      scheduleHeartbeat(10);
    });
  }

  function start() {
    if (countdown) {
      countdown.hidden = true;
    }
    stopped = false;
    watchHere.hidden = true;
    root.dataset.state = "starting";
    say(msg.msgStarting, false);
    post(msg.sessionUrl).then(function (result) {
      if (!result.ok && result.body.code === "not_yet") {
        setTimeout(start, 5000); // our clock ran ahead of the server's
        return;
      }
      answer(result);
    }, function () {
      stop(msg.msgError);
    });
  }

  function pad(number) {
    return (number < 10 ? "0" : "") + number;
  }

  function tick() {
    var left = Math.round((Date.parse(msg.opensAt) - Date.now()) / 1000);
    if (left <= 0) {
      start();
      return;
    }
    var days = Math.floor(left / 86400);
    var clock = pad(Math.floor((left % 86400) / 3600)) + ":" + pad(Math.floor((left % 3600) / 60)) + ":" + pad(left % 60);
    var dayWord = days === 1 ? msg.msgDay : msg.msgDays;
    countdown.textContent = msg.msgOpensIn.replace("{countdown}", (days > 0 ? days + " " + dayWord + " " : "") + clock);
    setTimeout(tick, 1000);
  }

  watchHere.querySelector("button").addEventListener("click", start);

  window.addEventListener("pagehide", function () {
    if (!stopped && navigator.sendBeacon) {
      navigator.sendBeacon(msg.endUrl);
    }
  });

  if (msg.open === "true") {
    start();
  } else {
    tick();
  }
})();
