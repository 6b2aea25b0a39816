// Guichet door scanner. Online: every code goes to POST /api/v1/checkin. Offline (or
// when the request fails): the code is verified here against the stored bundle (Ed25519
// with WebCrypto, or the vendored @noble/ed25519), refused if voided or already seen,
// queued, and uploaded to POST /api/v1/checkin/sync when the network is back.

const root = document.getElementById("door");
const $ = (id) => document.getElementById(id);
const store = window.localStorage;
const KEY = {
  token: "guichet.door.token",
  device: "guichet.door.device",
  event: "guichet.door.event",
  gate: "guichet.door.gate",
  queue: "guichet.door.queue",
  bundle: (id) => `guichet.door.bundle.${id}`,
  seen: (id) => `guichet.door.seen.${id}`,
};
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const CONTEXT = new TextEncoder().encode("GUICHET-TICKET|");
const REFRESH_MS = 60000;
const SYNC_MS = 15000;

let token = null;
let eventId = null;
let bundle = null;
let admittedIds = new Set();
let cameraStream = null;
let syncing = false;

function msg(name, values = {}) {
  let text = root.dataset["msg" + name.replace(/(^|-)(\w)/g, (_m, _d, c) => c.toUpperCase())] || name;
  for (const [key, value] of Object.entries(values)) text = text.replace(`{${key}}`, String(value));
  return text;
}

function readJSON(key, fallback) {
  try {
    const raw = store.getItem(key);
    return raw ? JSON.parse(raw) : fallback;
  } catch (_error) {
    return fallback;
  }
}

function newRequestId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  const payload = await response.json().catch(() => ({}));
  return { status: response.status, body: payload };
}

// ------------------------------------------------------------------ status line

function isOnline() {
  return navigator.onLine;
}

function showNetwork() {
  const online = isOnline();
  const network = $("network");
  network.textContent = online ? msg("online") : msg("offline");
  network.className = "network " + (online ? "is-online" : "is-offline");
  const queue = readJSON(KEY.queue, []);
  const waiting = $("queue");
  waiting.textContent = queue.length ? msg("waiting", { count: queue.length }) : msg("synced");
  waiting.dataset.count = String(queue.length);
  const expected = bundle ? bundle.expected : 0;
  $("counter").textContent = msg("counter", { admitted: admittedIds.size, expected });
}

// ------------------------------------------------------------------ verdict

let audio = null;

function beep(good) {
  try {
    audio = audio || new AudioContext();
    const tones = good ? [880] : [220, 180];
    tones.forEach((frequency, i) => {
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      oscillator.frequency.value = frequency;
      oscillator.type = good ? "sine" : "square";
      gain.gain.value = 0.2;
      oscillator.connect(gain).connect(audio.destination);
      const start = audio.currentTime + i * 0.22;
      oscillator.start(start);
      oscillator.stop(start + 0.18);
    });
  } catch (_error) {
    // No sound is no reason to stop the door.
  }
}

function showVerdict(answer, offline) {
  const verdict = $("verdict");
  const good = answer.result === "admitted";
  verdict.className = "verdict " + (good ? "is-admitted" : "is-refused");
  verdict.dataset.result = answer.result;
  $("verdict-result").textContent = msg(answer.result.replace("_", "-"));
  $("verdict-type").textContent = answer.ticket_type || "";
  const details = [];
  if (answer.result === "already_used" && answer.checked_in_at) {
    details.push(msg("used-at", { time: new Date(answer.checked_in_at).toLocaleTimeString() }));
    if (answer.gate) details.push(msg("at-gate", { gate: answer.gate }));
  }
  if (offline) details.push(`(${msg("offline-decision")})`);
  $("verdict-detail").textContent = details.join(" ");
  verdict.hidden = false;
  verdict.focus();
  beep(good);
  showNetwork();
}

function hideVerdict() {
  $("verdict").hidden = true;
  $("code").focus();
}

// ------------------------------------------------------------------ offline verification

function base32Decode(text) {
  const clean = text.trim().toUpperCase();
  let bits = 0;
  let value = 0;
  const out = [];
  for (const char of clean) {
    const index = BASE32.indexOf(char);
    if (index < 0) return null;
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  if (bits >= 5 || (value & ((1 << bits) - 1)) !== 0) return null;
  return new Uint8Array(out);
}

// Guichet writes a payload's bytes as one decimal number (a denser QR code than base32),
// with exactly the digits the largest number of that many bytes has; older tickets
// carry base32. Both spell the same signed bytes (see ticketing/tickets/payload.py).
function decimalDecode(text) {
  const clean = text.trim();
  let size = 1;
  while (size <= 146 && (256n ** BigInt(size) - 1n).toString().length < clean.length) size += 1;
  if ((256n ** BigInt(size) - 1n).toString().length !== clean.length) return null;
  let value = BigInt(clean);
  if (value >= 256n ** BigInt(size)) return null;
  const out = new Uint8Array(size);
  for (let i = size - 1; i >= 0; i -= 1) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

function payloadBytes(code) {
  return /^[0-9]+$/.test(code.trim()) ? decimalDecode(code) : base32Decode(code);
}

function uuidOf(bytes) {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function fromBase64Url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function parseTicket(code) {
  const raw = payloadBytes(code);
  if (!raw || raw.length < 2 || raw[0] !== 1) return null;
  const keyLength = raw[1];
  const bodyLength = 2 + keyLength + 48;
  if (keyLength < 1 || keyLength > 32 || raw.length !== bodyLength + 64) return null;
  const ids = raw.slice(2 + keyLength, bodyLength);
  const message = new Uint8Array(CONTEXT.length + bodyLength);
  message.set(CONTEXT);
  message.set(raw.slice(0, bodyLength), CONTEXT.length);
  return {
    keyId: new TextDecoder().decode(raw.slice(2, 2 + keyLength)),
    eventId: uuidOf(ids.slice(0, 16)),
    ticketId: uuidOf(ids.slice(16, 32)),
    ticketTypeId: uuidOf(ids.slice(32, 48)),
    message,
    signature: raw.slice(bodyLength),
  };
}

let noble = null;
// RFC 8032 test vector 1: a valid public key to probe WebCrypto's Ed25519 support.
const PROBE_KEY = Uint8Array.from("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a".match(/../g), (h) => parseInt(h, 16));

async function prepareVerifier() {
  // Decided while the network is still there: offline, the fallback could not be fetched.
  try {
    await crypto.subtle.importKey("raw", PROBE_KEY, { name: "Ed25519" }, false, ["verify"]);
  } catch (_error) {
    noble = noble || (await import(root.dataset.nobleSrc));
  }
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = reject;
    document.head.append(script);
  });
}

async function verifySignature(publicKey, signature, message) {
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    root.dataset.verifier = "webcrypto";
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch (_error) {
    // This browser's WebCrypto has no Ed25519: use the vendored implementation.
    noble = noble || (await import(root.dataset.nobleSrc));
    root.dataset.verifier = "noble";
    try {
      return await noble.verifyAsync(signature, message, publicKey);
    } catch (_failure) {
      return false;
    }
  }
}

async function decideOffline(code) {
  if (!bundle) return { result: "invalid", reason: "no_bundle" };
  const ticket = parseTicket(code);
  if (!ticket) return { result: "invalid" };
  const key = bundle.keys.find((k) => k.id === ticket.keyId);
  if (!key || (key.expires_at && new Date(key.expires_at) <= new Date())) return { result: "invalid" };
  if (!(await verifySignature(fromBase64Url(key.public_key), ticket.signature, ticket.message))) {
    return { result: "invalid" };
  }
  if (ticket.eventId !== bundle.event.id) return { result: "wrong_event" };
  const type = bundle.ticket_types.find((t) => t.id === ticket.ticketTypeId);
  const typed = { ticket_id: ticket.ticketId, ticket_type: type ? type.name : null };
  if (bundle.voided.includes(ticket.ticketId)) return { result: "voided", ...typed };
  if (admittedIds.has(ticket.ticketId)) return { result: "already_used", ...typed };
  return { result: "admitted", ...typed };
}

function remember(ticketId) {
  admittedIds.add(ticketId);
  const seen = readJSON(KEY.seen(eventId), []);
  seen.push(ticketId);
  store.setItem(KEY.seen(eventId), JSON.stringify(seen));
}

// ------------------------------------------------------------------ scanning

async function scan(code) {
  code = code.trim();
  if (!code) return;
  const gate = $("gate").value.trim() || null;
  const requestId = newRequestId();
  if (isOnline()) {
    try {
      const { status, body } = await api("POST", "/api/v1/checkin", { code, gate, request_id: requestId });
      if (status === 401) return refuseToken();
      if (status === 200) {
        if (body.result === "admitted") remember(body.ticket_id);
        return showVerdict(body, false);
      }
    } catch (_error) {
      // The network is gone although the browser thinks otherwise: decide here.
    }
  }
  const answer = await decideOffline(code);
  if (answer.result === "admitted") {
    remember(answer.ticket_id);
    const queue = readJSON(KEY.queue, []);
    queue.push({ code, gate, request_id: requestId, scanned_at: new Date().toISOString() });
    store.setItem(KEY.queue, JSON.stringify(queue));
  }
  showVerdict(answer, true);
}

async function syncQueue() {
  const queue = readJSON(KEY.queue, []);
  if (syncing || !queue.length || !isOnline() || !token) return showNetwork();
  syncing = true;
  try {
    const { status, body } = await api("POST", "/api/v1/checkin/sync", { scans: queue.slice(0, 500) });
    if (status === 200) {
      const done = new Set(body.results.map((r) => r.request_id));
      store.setItem(KEY.queue, JSON.stringify(readJSON(KEY.queue, []).filter((s) => !done.has(s.request_id))));
      if (body.duplicates) $("camera-error").textContent = msg("duplicates", { count: body.duplicates });
    } else if (status === 401) {
      refuseToken();
    }
  } catch (_error) {
    // Still offline: the queue waits for the next try.
  } finally {
    syncing = false;
    showNetwork();
  }
}

// ------------------------------------------------------------------ bundle and device

function useBundle(loaded) {
  bundle = loaded;
  admittedIds = new Set([...(bundle ? bundle.admitted : []), ...readJSON(KEY.seen(eventId), [])]);
  if (bundle) $("event-title").textContent = bundle.event.title;
  root.dataset.bundle = bundle ? "ready" : "missing";
  showNetwork();
}

async function refreshBundle() {
  if (!eventId) return;
  if (isOnline()) {
    try {
      const { status, body } = await api("GET", `/api/v1/checkin/events/${eventId}/bundle`);
      if (status === 200) {
        store.setItem(KEY.bundle(eventId), JSON.stringify(body));
        // Admissions the server now knows need not be remembered locally any more.
        const known = new Set(body.admitted);
        const seen = readJSON(KEY.seen(eventId), []).filter((id) => !known.has(id));
        store.setItem(KEY.seen(eventId), JSON.stringify(seen));
        return useBundle(body);
      }
      if (status === 401) return refuseToken();
    } catch (_error) {
      // Offline: fall back to the stored copy.
    }
  }
  const stored = readJSON(KEY.bundle(eventId), null);
  if (!stored) $("camera-error").textContent = msg("no-bundle");
  useBundle(stored);
}

function refuseToken() {
  store.removeItem(KEY.token);
  token = null;
  $("scanner").hidden = true;
  $("pairing").hidden = false;
  $("pairing-error").textContent = msg("token-refused");
}

async function loadDevice() {
  let device = readJSON(KEY.device, null);
  try {
    const { status, body } = await api("GET", "/api/v1/checkin/device");
    if (status === 401) return refuseToken();
    if (status === 200) {
      device = body;
      store.setItem(KEY.device, JSON.stringify(body));
    }
  } catch (_error) {
    // Offline start: the stored description will do.
  }
  $("pairing").hidden = true;
  $("scanner").hidden = false;
  const select = $("event-select");
  select.replaceChildren();
  for (const event of device ? device.events : []) {
    const option = document.createElement("option");
    option.value = event.id;
    option.textContent = event.title;
    select.append(option);
  }
  const saved = store.getItem(KEY.event);
  eventId = device && device.events.some((e) => e.id === saved) ? saved : select.value || null;
  select.value = eventId || "";
  await refreshBundle();
  await syncQueue();
  $("code").focus();
}

// ------------------------------------------------------------------ camera

async function startCamera() {
  $("camera-error").textContent = "";
  try {
    cameraStream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (_error) {
    $("camera-error").textContent = msg("camera-failed");
    return;
  }
  const video = $("video");
  video.srcObject = cameraStream;
  $("camera").hidden = false;
  await video.play();
  let detector = null;
  if ("BarcodeDetector" in window) {
    try {
      detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    } catch (_error) {
      detector = null;
    }
  }
  if (!detector && !window.jsQR) await loadScript(root.dataset.jsqrSrc);
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  let last = "";
  const tick = async () => {
    if (!cameraStream) return;
    let found = null;
    if (video.readyState >= 2 && $("verdict").hidden) {
      if (detector) {
        const codes = await detector.detect(video).catch(() => []);
        found = codes.length ? codes[0].rawValue : null;
      } else {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        context.drawImage(video, 0, 0);
        const image = context.getImageData(0, 0, canvas.width, canvas.height);
        const code = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
        found = code ? code.data : null;
      }
    }
    if (found && found !== last) {
      last = found;
      await scan(found);
    } else if (!found) {
      last = "";
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

function stopCamera() {
  if (cameraStream) cameraStream.getTracks().forEach((track) => track.stop());
  cameraStream = null;
  $("camera").hidden = true;
}

// ------------------------------------------------------------------ wiring

function start() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  if (fragment.get("token")) {
    store.setItem(KEY.token, fragment.get("token"));
    history.replaceState(null, "", window.location.pathname);
  }
  token = store.getItem(KEY.token);
  $("gate").value = store.getItem(KEY.gate) || "";

  $("scan-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("code");
    const code = input.value;
    input.value = "";
    await scan(code);
  });
  $("pairing-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("pairing-error").textContent = "";
    try {
      const { status, body } = await api("POST", "/api/v1/checkin/devices/pair", { pairing_code: $("pairing-code").value });
      if (status !== 200) throw new Error(String(status));
      token = body.device_token;
      store.setItem(KEY.token, token);
      await loadDevice();
    } catch (_error) {
      $("pairing-error").textContent = msg("pair-failed");
    }
  });
  $("verdict").addEventListener("click", hideVerdict);
  $("verdict").addEventListener("keydown", (event) => {
    // A handheld scanner types the next code at once: let its keys reach the input.
    if (event.key === "Enter" || event.key === "Escape") event.preventDefault();
    hideVerdict();
  });
  $("event-select").addEventListener("change", async (event) => {
    eventId = event.target.value;
    store.setItem(KEY.event, eventId);
    await refreshBundle();
  });
  $("gate").addEventListener("change", (event) => store.setItem(KEY.gate, event.target.value.trim()));
  $("forget").addEventListener("click", () => {
    store.clear();
    window.location.reload();
  });
  $("camera-button").addEventListener("click", startCamera);
  $("camera-stop").addEventListener("click", stopCamera);
  window.addEventListener("online", async () => {
    await syncQueue();
    await refreshBundle();
  });
  window.addEventListener("offline", showNetwork);
  setInterval(syncQueue, SYNC_MS);
  setInterval(refreshBundle, REFRESH_MS);

  if ("serviceWorker" in navigator) navigator.serviceWorker.register(root.dataset.serviceWorker).catch(() => {});
  prepareVerifier().catch(() => {});
  if (!("BarcodeDetector" in window)) loadScript(root.dataset.jsqrSrc).catch(() => {});
  if (token) {
    loadDevice();
  } else {
    $("pairing").hidden = false;
    $("pairing-code").focus();
  }
}

start();
