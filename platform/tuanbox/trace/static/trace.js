// The consumer trace page: recompute each event's GS1 hash from its JSON (epcis_hash.js), fold
// each Merkle proof from that recomputed leaf with WebCrypto, then ask the chain RPC (the
// page's CSP allows exactly that origin) whether each root was anchored; each window's lot
// commitment is rebuilt from the steps shown, so a report that leaves a step out is red. Every line says what
// was checked in a shopper's words (zh, then en); any failure turns the verdict red.
"use strict";

(() => {
  const source = document.getElementById("report").textContent;
  const report = JSON.parse(source);
  // The events as hashed: integers beyond 2^53 kept exact (JSON.parse would round them).
  if (window.EpcisHash) {
    window.EpcisHash.parseJson(source).events.forEach((e, i) => { report.events[i].event = e.event; });
  }
  const button = document.getElementById("verify");
  const rpc = button.dataset.rpc;
  const SELECTOR = button.dataset.selector;
  const list = document.getElementById("checks");
  const verdict = document.getElementById("verdict");
  // ok: true (passed), false (failed), null (not checked here); kind names the check for tests.
  const say = (ok, kind, zh, en) => {
    const li = document.createElement("li");
    // ✓ × ○: glyphs the bundled CJK fonts carry (emoji showed as boxes on phones).
    li.className = ok === true ? "ok" : ok === false ? "bad" : "wait";
    li.dataset.check = kind;
    li.textContent = (ok === true ? "✓ " : ok === false ? "× " : "○ ") + zh + " · " + en;
    list.appendChild(li);
    return ok;
  };
  // ok: true (all checked and passed), false (a check failed), null (passed, some unchecked).
  const conclude = (ok, zh, en) => {
    verdict.hidden = false;
    verdict.className = ok === true ? "verdict ok" : ok === false ? "verdict bad" : "verdict wait";
    verdict.textContent = (ok === true ? "✓ " : ok === false ? "× " : "○ ") + zh + " · " + en;
  };
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (h) => Uint8Array.from(h.replace(/^0x/, "").match(/../g) || [], (b) => parseInt(b, 16));
  const short = (root) => root.slice(0, 14) + "…";
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

  // This step's record: recompute its hash (version 2) and the Merkle leaf from the event JSON.
  const fingerprint = async (i, e) => {
    const n = i + 1;
    if (e.hash_version !== window.EpcisHash.VERSION) {
      // Version 1 (before GS1 conformance) is recomputed by `tuanbox trace verify` only.
      say(null, "fingerprint", `第${n}步是旧版记录，指纹请用命令行核对`,
        `event ${n}: older record format (hash version ${e.hash_version}): its fingerprint is checked by tuanbox trace verify, not here`);
      return e.leaf || null;
    }
    let hash, leaf;
    try {
      hash = await window.EpcisHash.eventHash(e.event);
      leaf = await window.EpcisHash.anchorLeaf(e.event);
    } catch (err) {
      say(false, "fingerprint", `第${n}步的记录无法读取`, `event ${n}: this step's record cannot be read (${err.message})`);
      return false;
    }
    if (hash !== e.event_hash || (e.leaf && e.leaf !== leaf)) {
      say(false, "fingerprint", `第${n}步的记录被改动过（指纹不符）`,
        `event ${n}: tampered — this step's record was changed after it was recorded (its fingerprint does not match)`);
      return false;
    }
    say(true, "fingerprint", `第${n}步的记录未被改动（指纹一致）`, `event ${n}: this step's record is unchanged (its fingerprint matches)`);
    return leaf;
  };

  // Each root on chain: "ok", or a failure already said; null when not checked here.
  const checkRoots = async () => {
    const roots = new Map();
    if (!report.anchors.length) return roots;
    if (!rpc) {
      say(null, "chain", "未配置区块链节点，批次未在链上核对", "no chain RPC configured: the batches were not checked on chain");
      return roots;
    }
    let chain;
    try {
      chain = parseInt(await call("eth_chainId", []), 16);
    } catch (err) {
      say(null, "chain", "无法连接区块链节点，批次未在链上核对", `the chain node cannot be reached from this phone (${err.message}): the batches were not checked on chain`);
      return roots;
    }
    for (const a of report.anchors) {
      if (chain !== a.chain_id) {
        say(false, "chain", `链不符：节点是链 ${chain}，报告写的是链 ${a.chain_id}`,
          `root ${short(a.root)}: wrong chain — the node serves chain ${chain}, the report names chain ${a.chain_id}`);
        roots.set(a.root, "bad");
        continue;
      }
      let when;
      try {
        when = Number(BigInt(await call("eth_call", [{ to: a.contract, data: SELECTOR + a.root.slice(2) }, "latest"])));
      } catch (err) {
        say(false, "chain", "链上查不到该批次", `root ${short(a.root)}: not found on chain ${chain} (contract ${a.contract}: ${err.message})`);
        roots.set(a.root, "bad");
        continue;
      }
      const claimed = Math.floor(Date.parse(a.block_time) / 1000);
      if (when === 0) {
        say(false, "chain", "链上查不到该批次", `root ${short(a.root)}: not found on chain ${chain} — contract ${a.contract} has no record of this batch`);
        roots.set(a.root, "bad");
      } else if (when !== claimed) {
        say(false, "chain", "该批次上链时间与报告不符", `root ${short(a.root)}: sealed on chain at ${new Date(when * 1000).toISOString()}, not at ${a.block_time} as the report claims`);
        roots.set(a.root, "bad");
      } else {
        say(true, "chain", `批次已在链 ${chain} 上封存`, `root ${short(a.root)}: anchored on chain ${chain} at block ${a.block_number}, ${new Date(when * 1000).toISOString()} (contract ${a.contract})`);
        roots.set(a.root, "ok");
      }
    }
    return roots;
  };

  // Completeness (traceability.completeness): each window commits, per lot, the count of the
  // lot's events and the sub-root of their leaves in window order, as one more leaf of its
  // tree. Rebuild that leaf from the steps this report shows and fold its proof to the root:
  // a step left out changes the count and the sub-root. False when a check failed.
  const checkCompleteness = async (leaves, folded) => {
    let ok = true;
    const committed = new Map((report.lot_commitments || []).map((c) => [c.root, c]));
    for (const a of report.anchors) {
      const c = committed.get(a.root);
      committed.delete(a.root);
      if (!c) {
        // The anchor does not say whether its window has lot leaves, so a report whose list
        // was removed looks exactly like an older record: never green, and said as such.
        say(null, "complete", `批次 ${short(a.root)} 的环节是否齐全无法核对（旧记录，或报告缺少链上清单）`,
          `root ${short(a.root)}: completeness not checkable for this older record — the report carries no list of this lot's steps for this batch, so a step left out would go unnoticed`);
        continue;
      }
      const members = [];
      let blamed = false;
      report.events.forEach((e, i) => {
        if (e.status !== "anchored" || e.root !== a.root || !e.proof) return;
        if (folded[i] !== "ok" || typeof leaves[i] !== "string") blamed = true;
        members.push([e.proof.leaf_index, leaves[i]]);
      });
      members.sort((x, y) => x[0] - y[0]);
      const proof = c.proof || {};
      const fits = (leaf) => fold(new TextEncoder().encode(leaf), proof.leaf_index, proof.tree_size, (proof.siblings || []).map(unhex));
      let claimed;
      try {
        claimed = Number.isInteger(c.count) && typeof c.sub_root === "string" && proof.tree_size === a.event_count
          ? await fits(window.EpcisHash.lotLeaf(report.gtin, report.lot, c.count, c.sub_root)) : null;
      } catch (err) {
        claimed = null;
      }
      if (claimed !== a.root) {
        ok = false;
        say(false, "complete", `批次 ${short(a.root)} 的环节清单与链上记录不符`,
          `root ${short(a.root)}: wrong completeness proof — the list of this lot's steps does not belong to the batch sealed on chain`);
        continue;
      }
      if (members.length !== c.count) {
        ok = false;
        say(false, "complete", `不完整：链上记录此批次有 ${c.count} 个环节，报告只显示 ${members.length} 个`,
          `incomplete: the chain records ${c.count} steps for this lot, the report shows ${members.length}`);
        continue;
      }
      if (blamed) continue; // a step of this batch already failed above; no second blame
      const leaf = await window.EpcisHash.lotCommitmentLeaf(report.gtin, report.lot, members.map((m) => m[1]));
      if ((await fits(leaf)) !== a.root) {
        ok = false;
        say(false, "complete", `不完整：报告中的环节不是链上记录的那 ${c.count} 个`,
          `incomplete: the report's ${c.count} steps of this lot are not the ones the chain records for this batch`);
        continue;
      }
      say(true, "complete", `齐全：链上记录此批次有 ${c.count} 个环节，报告全部显示`,
        `complete: the chain records ${c.count} steps for this lot in this batch, and the report shows all of them`);
    }
    for (const root of committed.keys()) {
      ok = false;
      say(false, "complete", "报告含有一个不属于任何批次的环节清单", `root ${short(root)}: a list of steps for a batch the report does not name`);
    }
    return ok;
  };

  button.addEventListener("click", async () => {
    list.textContent = "";
    verdict.hidden = true;
    button.disabled = true;
    try {
      if (!window.crypto || !crypto.subtle || !window.EpcisHash) {
        say(false, "setup", "此页面不在安全连接（HTTPS）中，手机无法计算指纹", "this page is not in a secure context (HTTPS): the browser offers no SHA-256 here");
        conclude(false, "无法核验", "cannot verify here");
        return;
      }
      const anchors = new Map(report.anchors.map((a) => [a.root, a]));
      const folded = [], leaves = [];
      for (const [i, e] of report.events.entries()) {
        const leaf = await fingerprint(i, e);
        leaves.push(leaf);
        if (leaf === false || e.status !== "anchored") { folded.push(leaf === false ? false : null); continue; }
        if (!leaf || !e.proof || !anchors.has(e.root)) { folded.push("noproof"); continue; }
        const size = e.proof.tree_size;
        const root = await fold(new TextEncoder().encode(leaf), e.proof.leaf_index, size, e.proof.siblings.map(unhex));
        folded.push(root === e.root && anchors.get(e.root).event_count === size ? "ok" : root);
      }
      const roots = await checkRoots();
      let failed = list.querySelector("li.bad") !== null;
      for (const [i, e] of report.events.entries()) {
        const n = i + 1, got = folded[i];
        if (got === false) continue; // its record already failed
        if (e.status !== "anchored") {
          say(null, "sealed", `第${n}步尚未上链（等待下一批）`, `event ${n}: not sealed on chain yet (it joins the next batch)`);
          continue;
        }
        if (got !== "ok") {
          failed = true;
          say(false, "sealed", `第${n}步不属于它声称的批次`, `event ${n}: wrong proof — it is not part of the batch it claims` + (typeof got === "string" && got.startsWith("0x") ? ` (folds to ${short(got)})` : ""));
          continue;
        }
        const block = anchors.get(e.root).block_number;
        const state = roots.get(e.root);
        if (state === "bad") {
          failed = true;
          say(false, "sealed", `第${n}步所属批次未能在链上确认`, `event ${n}: its batch (root ${short(e.root)}) could not be confirmed on chain`);
        } else if (state === "ok") {
          say(true, "sealed", `第${n}步属于在区块 ${block} 上链封存的批次`, `event ${n}: part of the batch sealed on chain at block ${block} (proof folds to root ${short(e.root)})`);
        } else {
          say(null, "sealed", `第${n}步属于批次 ${short(e.root)}（未在链上核对）`, `event ${n}: proof folds to root ${short(e.root)}, not checked on chain`);
        }
      }
      if (!(await checkCompleteness(leaves, folded))) failed = true;
      if (failed) conclude(false, "核验失败：此报告与原始记录或链上记录不符", "verification failed: this report does not match what was recorded or sealed on chain");
      else if (list.querySelector("li.wait")) conclude(null, "已核验的部分全部一致，部分内容未能在此核对", "everything checked here matches; some parts could not be checked here");
      else conclude(true, "全部核验通过", "everything checks out");
    } finally {
      button.disabled = false;
    }
  });
})();
