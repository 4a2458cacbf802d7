// The consumer trace page: fold each Merkle proof with WebCrypto, then ask the chain RPC
// (the page's CSP allows exactly that origin) whether each root was anchored.
"use strict";

(() => {
  const report = JSON.parse(document.getElementById("report").textContent);
  const button = document.getElementById("verify");
  const rpc = button.dataset.rpc;
  const SELECTOR = button.dataset.selector;
  const list = document.getElementById("checks");
  const say = (ok, text) => {
    const li = document.createElement("li");
    // ✓ × ○: glyphs the bundled CJK fonts carry (emoji showed as boxes on phones).
    li.className = ok === true ? "ok" : ok === false ? "bad" : "wait";
    li.textContent = (ok === true ? "✓ " : ok === false ? "× " : "○ ") + text;
    list.appendChild(li);
  };
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (h) => Uint8Array.from(h.replace(/^0x/, "").match(/../g) || [], (b) => parseInt(b, 16));
  const sha = async (...parts) => {
    const size = parts.reduce((n, p) => n + p.length, 0);
    const all = new Uint8Array(size);
    let at = 0;
    for (const p of parts) { all.set(p, at); at += p.length; }
    return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  };
  // RFC 9162 §2.1.3.2: fold an audit path from the leaf to the root.
  const fold = async (leaf, index, size, siblings) => {
    if (index >= size) return null;
    let fn = index, sn = size - 1;
    let r = await sha(Uint8Array.of(0), leaf);
    for (const s of siblings) {
      if (sn === 0) return null;
      if (fn % 2 === 1 || fn === sn) {
        r = await sha(Uint8Array.of(1), s, r);
        while (fn % 2 === 0 && fn !== 0) { fn >>= 1; sn >>= 1; }
      } else {
        r = await sha(Uint8Array.of(1), r, s);
      }
      fn >>= 1; sn >>= 1;
    }
    return sn === 0 ? "0x" + hex(r) : null;
  };
  const call = async (method, params) => {
    const reply = await fetch(rpc, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
    const body = await reply.json();
    if (body.error) throw new Error(body.error.message);
    return body.result;
  };
  button.addEventListener("click", async () => {
    list.textContent = "";
    if (!window.crypto || !crypto.subtle) {
      say(false, "this page is not in a secure context (HTTPS): the browser offers no SHA-256 here");
      return;
    }
    let proofs = 0;
    for (const [i, e] of report.events.entries()) {
      if (e.status !== "anchored") { say(null, `event ${i + 1}: pending, not anchored yet`); continue; }
      if (!e.leaf || !e.leaf.startsWith(e.event_hash)) { say(false, `event ${i + 1}: leaf does not carry the event hash`); continue; }
      const root = await fold(new TextEncoder().encode(e.leaf), e.proof.leaf_index, e.proof.tree_size, e.proof.siblings.map(unhex));
      if (root === e.root) { proofs++; say(true, `event ${i + 1}: proof folds to root ${root.slice(0, 14)}…`); }
      else say(false, `event ${i + 1}: wrong proof (folds to ${root})`);
    }
    if (!rpc) { say(null, "no chain RPC configured: roots not checked on chain"); return; }
    for (const a of report.anchors) {
      try {
        const chain = parseInt(await call("eth_chainId", []), 16);
        if (chain !== a.chain_id) { say(false, `root ${a.root.slice(0, 14)}…: RPC serves chain ${chain}, report names ${a.chain_id}`); continue; }
        const out = await call("eth_call", [{ to: a.contract, data: SELECTOR + a.root.slice(2) }, "latest"]);
        const when = Number(BigInt(out));
        if (when > 0) say(true, `root ${a.root.slice(0, 14)}… anchored on chain ${chain} at ${new Date(when * 1000).toISOString()} (contract ${a.contract})`);
        else say(false, `root ${a.root.slice(0, 14)}… never anchored at ${a.contract}`);
      } catch (err) {
        say(null, `chain RPC not reachable from this phone (${err.message}): roots not checked`);
      }
    }
    say(null, `checked here: ${proofs} Merkle proofs, ${report.anchors.length} roots; event hashes: use tuanbox trace verify`);
  });
})();
