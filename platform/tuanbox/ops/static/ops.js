// Tuanbox ops: live updates over server-sent events, and the alert/hold actions. No framework.
"use strict";

(function () {
  const $ = (sel, root) => (root || document).querySelectorAll(sel);
  let alertsDigest = null;
  let chartsRefreshedAt = Date.now();

  function setText(sel, value) {
    $(sel).forEach((el) => { el.textContent = value; });
  }

  function apply(snap) {
    setText("#alert-count", snap.open_alerts ? String(snap.open_alerts) : "");
    setText("[data-open-alerts]", String(snap.open_alerts));
    const banner = document.getElementById("telemetry-banner");
    if (banner) {
      banner.hidden = !snap.telemetry_error;
      banner.textContent = snap.telemetry_error || "";
    }
    for (const [id, l] of Object.entries(snap.lockers)) {
      $(`[data-online="${CSS.escape(id)}"]`).forEach((el) => {
        el.textContent = l.online ? "online" : "offline";
        el.classList.toggle("ok", l.online);
        el.classList.toggle("bad", !l.online);
      });
      if (l.outbox_depth !== null) setText(`[data-outbox="${CSS.escape(id)}"]`, String(l.outbox_depth));
      setText(`[data-locker-alerts="${CSS.escape(id)}"]`, String(l.open_alerts));
    }
    for (const [key, c] of Object.entries(snap.temps)) {
      setText(`[data-temp="${CSS.escape(key)}"]`, c.toFixed(1));
    }
    if (alertsDigest !== null && snap.alerts_digest !== alertsDigest) refreshAlerts();
    alertsDigest = snap.alerts_digest;
    // Charts are images: reload them at most once a minute while readings move.
    if (Date.now() - chartsRefreshedAt > 60000) {
      chartsRefreshedAt = Date.now();
      $("img[data-chart]").forEach((img) => {
        const url = new URL(img.src);
        url.searchParams.set("_", String(Date.now()));
        img.src = url.toString();
      });
    }
  }

  async function refreshAlerts() {
    const box = document.querySelector('[data-live-alerts="true"]');
    if (!box) return;
    const response = await fetch("/ops/alerts/fragment", { credentials: "same-origin" });
    if (response.ok) box.innerHTML = await response.text();
  }

  function connect() {
    if (!window.EventSource || document.body.dataset.page === "login") return;
    const live = document.getElementById("live");
    const source = new EventSource("/ops/stream");
    source.addEventListener("snapshot", (e) => apply(JSON.parse(e.data)));
    source.onopen = () => live && live.classList.add("on");
    source.onerror = () => live && live.classList.remove("on");
  }

  async function post(url, body, shown) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
      if (shown) { shown.textContent = detail; shown.hidden = false; } else { alert(detail); }
      return false;
    }
    return true;
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    let ok = false;
    if (action === "acknowledge") {
      ok = await post(`/ops/alerts/${button.dataset.alertId}/acknowledge`, {});
    } else if (action === "resolve") {
      const input = document.querySelector(`[data-note-for="${button.dataset.alertId}"]`);
      const note = (input && input.value.trim()) || prompt("What was done?") || "";
      if (!note) return;
      ok = await post(`/ops/alerts/${button.dataset.alertId}/resolve`, { note });
    } else if (action === "release" || action === "reject") {
      const note = prompt(action === "release" ? "Why are the goods fine?" : "Why reject (the order is refunded)?") || "";
      if (!note) return;
      ok = await post(`/ops/holds/${button.dataset.holdId}/${action}`, { note });
    } else if (action === "licence-approve" || action === "licence-reject") {
      const approve = action === "licence-approve";
      const note = prompt(approve ? "What was checked (register, dates)?" : "Why reject (the merchant sees this)?") || "";
      if (!note) return;
      ok = await post(`/ops/licences/${button.dataset.licenceId}/review`, { decision: approve ? "approved" : "rejected", note });
      if (ok) location.reload();
      return;
    } else if (action === "membership-refund" || action === "member-price-set" || action === "member-price-clear") {
      // The membership pages: the problem's words go under the heading, not in a dialog.
      const shown = document.getElementById("action-error");
      if (shown) shown.hidden = true;
      if (action === "membership-refund") {
        if (!confirm(`Refund ${button.dataset.amount} and end this membership now?`)) return;
        ok = await post(`/ops/users/${button.dataset.userId}/membership/refund`, { expected_cents: Number(button.dataset.cents) }, shown);
      } else if (action === "member-price-set") {
        const input = document.querySelector(`[data-price-for="${button.dataset.skuId}"]`);
        ok = await post(`/ops/skus/${button.dataset.skuId}/member-price`, { price: input ? input.value : "" }, shown);
      } else {
        if (!confirm("Clear the member price? Members pay the price again.")) return;
        ok = await post(`/ops/skus/${button.dataset.skuId}/member-price/clear`, {}, shown);
      }
      if (ok) location.reload();
      return;
    } else if (action === "reward-set" || action === "task-create") {
      // The invites page: leaderboard reward per period kind, platform invite tasks.
      const shown = document.getElementById("action-error");
      if (shown) shown.hidden = true;
      if (action === "reward-set") {
        const kind = button.dataset.kind;
        const value = (attr) => document.querySelector(`[${attr}="${kind}"]`);
        ok = await post(`/ops/leaderboard-rewards/${kind}`, {
          template_id: value("data-reward-template").value,
          top_n: value("data-reward-top").value,
          active: value("data-reward-active").checked,
        }, shown);
      } else {
        const form = document.getElementById("task-form");
        const field = (name) => form.querySelector(`[name="${name}"]`).value;
        const when = (name) => { const v = field(name); return v ? new Date(v).toISOString() : ""; };
        ok = await post("/ops/invite-tasks", {
          name: field("name"), goal: field("goal"), template_id: field("template_id"),
          starts_at: when("starts_at"), ends_at: when("ends_at"),
        }, shown);
      }
      if (ok) location.reload();
      return;
    } else if (action === "risk-approve" || action === "risk-reject") {
      const approve = action === "risk-approve";
      const note = prompt(approve ? "Why is this a false alarm?" : "Why reject (held orders are cancelled and refunded)?") || "";
      if (!note) return;
      ok = await post(`/ops/risk/reviews/${button.dataset.reviewId}/${approve ? "approve" : "reject"}`, { note });
      if (ok) location.reload();
      return;
    }
    if (ok) {
      const box = document.querySelector("#alerts");
      if (box) {
        const response = await fetch(location.pathname + location.search, { credentials: "same-origin" });
        const html = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = html.querySelector("#alerts");
        if (fresh) box.innerHTML = fresh.innerHTML;
      }
    }
  });

  connect();
})();
