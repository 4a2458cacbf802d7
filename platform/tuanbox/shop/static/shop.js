// The shopper pages' one script: countdowns tick, forms are not sent twice. Pages work without it.
(() => {
  "use strict";
  const pad = (n) => String(n).padStart(2, "0");
  const show = (s) => {
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60), sec = s % 60;
    return d ? `${d}d ${h}h` : `${h}:${pad(m)}:${pad(sec)}`;
  };
  const start = Date.now();
  const clocks = [...document.querySelectorAll("time[data-countdown]")].map((el) => ({
    el, total: parseInt(el.dataset.seconds, 10) || 0,
  }));
  const tick = () => {
    const gone = Math.floor((Date.now() - start) / 1000);
    for (const c of clocks) {
      const left = Math.max(0, c.total - gone);
      const text = left > 0 ? show(left) : c.el.dataset.done;
      if (c.el.textContent !== text) c.el.textContent = text;
    }
  };
  if (clocks.length) { tick(); setInterval(tick, 1000); }
  document.addEventListener("submit", (ev) => {
    const form = ev.target;
    if (form.dataset.sent) { ev.preventDefault(); return; }
    form.dataset.sent = "1";
    setTimeout(() => { delete form.dataset.sent; }, 5000);
  });
})();
