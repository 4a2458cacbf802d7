// The shopper pages' one script: countdowns tick, forms are not sent twice. Pages work without it.
(() => {
  "use strict";
  const pad = (n) => String(n).padStart(2, "0");
  // Days and hours in the page's language (base.html's data-days, from the catalogs).
  const days = document.body.dataset.days;
  const show = (s) => {
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (d && days) return days.replace("%(d)s", d).replace("%(h)s", h);
    return `${d * 24 + h}:${pad(m)}:${pad(sec)}`;
  };
  // The server's clock at rendering: countdowns agree with it, not with the phone's clock.
  const offset = (parseInt(document.body.dataset.now, 10) || Date.now()) - Date.now();
  const clocks = [...document.querySelectorAll("time[data-countdown]")].map((el) => ({
    el, at: Date.parse(el.getAttribute("datetime")),
  }));
  const tick = () => {
    const now = Date.now() + offset;
    for (const c of clocks) {
      const left = Math.max(0, Math.floor((c.at - now) / 1000));
      const text = left > 0 ? show(left) : c.el.dataset.done;
      if (c.el.textContent !== text) c.el.textContent = text;
    }
  };
  if (clocks.length) { tick(); setInterval(tick, 1000); }
  // Flash-sale stock, live: the page (perhaps from the cache) painted what it knew.
  const boxes = [...document.querySelectorAll("[data-sale-stock]")];
  const refresh = async () => {
    const ids = boxes.map((b) => b.dataset.saleStock).join(",");
    try {
      const res = await fetch(`/shop/live.json?sales=${encodeURIComponent(ids)}`);
      if (!res.ok) return;
      const live = (await res.json()).sales || {};
      for (const b of boxes) {
        const left = live[b.dataset.saleStock];
        if (left === undefined) continue;
        const total = parseInt(b.dataset.total, 10) || 0;
        b.querySelector(".stock").textContent = b.dataset.text
          .replace("%(left)s", left).replace("%(total)s", total);
        const pct = total ? Math.min(100, Math.floor(((total - left) / total) * 100)) : 0;
        const bar = b.querySelector("[role=progressbar]");
        bar.setAttribute("aria-valuenow", pct);
        bar.querySelector("rect").setAttribute("width", pct);
      }
    } catch (e) { /* offline: keep what is shown */ }
  };
  if (boxes.length) { refresh(); setInterval(refresh, 5000); }
  // "Remind me" on an upcoming sale: the (cached) page offers it; this shopper's own choice
  // comes from a small per-shopper fetch.
  for (const box of document.querySelectorAll("[data-remind]")) {
    fetch(box.dataset.remind, { cache: "no-store" })
      .then((res) => (res.ok ? res.json() : null))
      .then((mine) => {
        if (!mine || !mine.on) return;
        box.querySelector("[data-remind-ask]").hidden = true;
        box.querySelector("[data-remind-cancel]").hidden = false;
        box.querySelector("[data-remind-on]").hidden = false;
      })
      .catch(() => { /* offline: keep the button */ });
  }
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.dataset.sent) { ev.preventDefault(); return; }
    form.dataset.sent = "1";
    setTimeout(() => { delete form.dataset.sent; }, 5000);
  });
})();
// Order and pickup pages: follow the order live (a small poll; the page shows its own state
// without script), keep the pickup code on the phone for offline use, full screen on demand.
(() => {
  "use strict";
  const CACHE = "tuanbox-pickup-v1";
  const say = document.querySelector("[data-live-say]");
  // Poll the order's version; when it moves, swap in the page's new live region.
  const watch = (region) => {
    const poll = async () => {
      try {
        const res = await fetch(region.dataset.live, { cache: "no-store" });
        if (!res.ok) return setTimeout(poll, 4000);
        const live = await res.json();
        const moved = region.dataset.version
          ? live.v !== region.dataset.version : live.status !== region.dataset.status;
        if (!moved) return live.live === false ? null : setTimeout(poll, 2000);
        const page = await fetch(location.href, { cache: "no-store" });
        const doc = new DOMParser().parseFromString(await page.text(), "text/html");
        const fresh = doc.getElementById("order-live");
        if (!fresh) return setTimeout(poll, 4000);
        region.replaceWith(fresh);
        if (say) say.textContent = live.text;
        setup(fresh);
      } catch (e) { setTimeout(poll, 4000); /* offline: keep what is shown */ }
      return null;
    };
    setTimeout(poll, 2000);
  };
  const keep = (region) => {
    if (!("serviceWorker" in navigator) || !window.caches) return;
    const assets = [...document.querySelectorAll("link[rel=stylesheet], script[src]")]
      .map((n) => n.getAttribute("href") || n.getAttribute("src"));
    navigator.serviceWorker.register(region.dataset.worker, { scope: "/orders/" })
      .then(() => navigator.serviceWorker.ready)
      .then(() => caches.open(CACHE))
      .then((cache) => cache.addAll([location.pathname, ...assets]))
      .then(() => {
        const note = region.querySelector("[data-offline-ready]");
        if (note) note.hidden = false;
        document.body.dataset.offlineReady = "1";
      })
      .catch(() => {});
  };
  const setup = (region) => {
    if (region.hasAttribute("data-pickup")) {
      const button = region.querySelector("[data-fullscreen]");
      if (button && document.fullscreenEnabled) {
        button.hidden = false;
        button.addEventListener("click", () => {
          region.querySelector(".pickup").requestFullscreen().catch(() => {});
        });
      }
      if (navigator.wakeLock) navigator.wakeLock.request("screen").catch(() => {});
      keep(region);
    }
    if (region.hasAttribute("data-polling")) watch(region);
  };
  const region = document.getElementById("order-live");
  if (region) setup(region);
  // Signing out takes the kept pickup codes off this phone.
  document.addEventListener("submit", (ev) => {
    if (ev.target.getAttribute("action") === "/signin/out" && window.caches) caches.delete(CACHE);
  });
})();
