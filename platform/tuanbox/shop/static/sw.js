// The pickup pages' service worker (scope /orders/): a pickup page and what it loads are
// answered from the network while there is one, and from this phone's copy when there is not,
// so the QR opens in a basement with no signal (the locker checks the signed token offline).
"use strict";
const CACHE = "tuanbox-pickup-v1";
const PICKUP = /^\/orders\/[A-Za-z0-9-]{1,36}\/pickup$/;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const page = PICKUP.test(url.pathname);
  if (!page && !url.pathname.startsWith("/shop/static/")) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const fresh = await fetch(request);
      // Keep the newest pickup page (a later one may say "picked up": that replaces it).
      if (page && fresh.ok) await cache.put(url.pathname, fresh.clone());
      return fresh;
    } catch (offline) {
      const kept = await cache.match(page ? url.pathname : request, { ignoreVary: true });
      if (kept) return kept;
      throw offline;
    }
  })());
});
