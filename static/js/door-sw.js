// Keeps the door scanner's own files so that /door opens again without a network (a
// phone that reloads or restarts at the venue). API answers are never cached: the page
// keeps its bundle and queue in localStorage itself.

const CACHE = "guichet-door-v1";
const SHELL = [
  "/door",
  "/static/css/door.css",
  "/static/js/door.js",
  "/static/vendor/noble-ed25519/index.js",
  "/static/vendor/jsqr/jsQR.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return;
  // Network first, so a new version reaches the door as soon as it is online.
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        const copy = response.clone();
        if (response.ok) caches.open(CACHE).then((cache) => cache.put(url.pathname, copy));
        return response;
      })
      .catch(() => caches.match(url.pathname)),
  );
});
