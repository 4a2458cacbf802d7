// The shopper pages' one script: countdowns tick, forms are not sent twice. Pages work without it.
(() => {
  "use strict";
  const pad = (n) => String(n).padStart(2, "0");
  const show = (s) => {
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60), sec = s % 60;
    return d ? `${d}d ${h}h` : `${h}:${pad(m)}:${pad(sec)}`;
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
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.dataset.sent) { ev.preventDefault(); return; }
    form.dataset.sent = "1";
    setTimeout(() => { delete form.dataset.sent; }, 5000);
  });
})();
