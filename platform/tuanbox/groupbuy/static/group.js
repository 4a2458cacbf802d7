// The shopper's group page: select the share link on tap, count the time left down locally.
"use strict";

(function () {
  const share = document.getElementById("share");
  if (share) share.addEventListener("click", () => share.select());

  // The server's figure on each load is the truth; this only ticks it down between loads.
  const el = document.getElementById("left");
  if (!el || el.dataset.ticking !== "true") return;
  let s = parseInt(el.dataset.seconds, 10);
  setInterval(() => {
    if (s > 0) s -= 1;
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    el.textContent = h + "h " + String(m).padStart(2, "0") + "m " + String(r).padStart(2, "0") + "s";
  }, 1000);
})();
