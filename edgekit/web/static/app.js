"use strict";
// The status page: /api/status once, then the live stream (Server-Sent Events) and the event list.
const $ = (id) => document.getElementById(id);
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const WINDOW_S = 300;
let csrf = null, rules = [], history = [], lastEvents = "", drawPending = false, lastMessage = 0;

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}

async function api(path, opts) {
  const r = await fetch(path, Object.assign({credentials: "same-origin"}, opts));
  if (r.status === 401) { $("login").hidden = false; throw new Error("log in"); }
  if (!r.ok) throw new Error((await r.json()).error || r.statusText);
  return r.json();
}

async function session() {
  const s = await api("/api/session");
  csrf = s.csrf;
  $("login").hidden = !(s.password_required && !s.authenticated);
  return s;
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/api/login", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({password: $("password").value}), credentials: "same-origin"});
  if (!r.ok) { $("login-error").textContent = (await r.json()).error; return; }
  csrf = (await r.json()).csrf; $("login").hidden = true; start();
});

function showNow(m) {
  $("level").textContent = m.dbfs === null ? "silence" : `${m.dbfs.toFixed(0)} dBFS`;
  const top = $("top"); top.replaceChildren();
  for (const [label, score] of m.top) top.append(el("li", {text: `${label} ${score.toFixed(2)}`}));
  if (m.gated) top.append(el("li", {text: "(quiet: below min_dbfs, not scored)"}));
  const mic = $("mic");
  mic.textContent = m.mic === "heard" ? "mic heard" : m.mic === "lost" ? "mic lost" : "mic silent";
  mic.className = "pill " + (m.mic === "heard" ? "ok" : "bad");
  const up = m.uptime, h = Math.floor(up / 3600), mi = Math.floor(up % 3600 / 60);
  $("facts").textContent = `${m.model} on ${m.device}, ${m.frontend} front end, hop ${m.hop} s · ` +
    `up ${h} h ${mi} min · ${m.windows} windows, ${m.inference_ms} ms/inference · ${m.source}`;
  const legend = $("legend"); legend.replaceChildren();
  m.rules.forEach((r, i) => {
    const s = el("span", {"data-rule": r.name, class: "rule-score"});
    s.style.color = COLORS[i % COLORS.length];
    s.textContent = `${r.name} ${r.score === null ? "–" : r.score.toFixed(2)} (enter ${r.enter}, release ${r.release})` +
      (r.active ? " ● on" : "");
    legend.append(s);
  });
}

function draw() {
  drawPending = false;
  const c = $("chart"), dpr = window.devicePixelRatio || 1;
  c.width = c.clientWidth * dpr; c.height = 180 * dpr;
  const g = c.getContext("2d"), W = c.width, H = c.height;
  g.clearRect(0, 0, W, H);
  if (!history.length) return;
  const now = history[history.length - 1][0];
  // The chart spans what there is, from 30 s up to the last 5 minutes.
  const span = Math.min(WINDOW_S, Math.max(30, now - history[0][0]));
  $("span").textContent = `−${Math.round(span)} s`;
  const x = (t) => W - (now - t) / span * W, y = (v) => H - v * (H - 8 * dpr) - 4 * dpr;
  g.lineWidth = 1.5 * dpr;
  rules.forEach((r, i) => {
    const col = COLORS[i % COLORS.length];
    g.strokeStyle = col;
    for (const [lvl, dash] of [[r.enter, [6, 4]], [r.release, [2, 4]]]) {
      g.setLineDash(dash.map((d) => d * dpr)); g.globalAlpha = 0.6;
      g.beginPath(); g.moveTo(0, y(lvl)); g.lineTo(W, y(lvl)); g.stroke();
    }
    g.setLineDash([]); g.globalAlpha = 1; g.beginPath();
    let started = false;
    for (const [t, , scores] of history) {
      const v = scores[i];
      if (v === null || v === undefined || now - t > span) { started = false; continue; }
      if (started) g.lineTo(x(t), y(v)); else { g.moveTo(x(t), y(v)); started = true; }
    }
    g.stroke();
  });
}

function schedule() { if (!drawPending) { drawPending = true; requestAnimationFrame(draw); } }

function eventItem(ev) {
  const li = el("li", {"data-id": ev.id});
  const when = new Date(ev.start || ev.end).toLocaleString();
  li.append(el("div", {class: "ev-head"}, el("b", {text: ev.rule}), el("span", {text: ev.label}),
    el("span", {text: `score ${Number(ev.score).toFixed(2)}`}),
    el("span", {text: ev.duration === null ? "ongoing" : `${ev.duration.toFixed(1)} s`}),
    el("time", {text: when, datetime: ev.start || ""})));
  if (ev.clip) {
    li.append(el("audio", {controls: "", preload: "metadata", src: ev.clip}));
    li.append(el("img", {class: "spec", alt: "spectrogram of the clip", loading: "lazy",
      src: ev.clip.replace(/clip$/, "spectrogram.png")}));
  } else {
    li.append(el("div", {class: "withheld", text: `no clip: ${ev.clip_withheld}`}));
  }
  const note = el("input", {type: "text", placeholder: "note", maxlength: "1000", "aria-label": "note"});
  note.value = ev.review ? ev.review.note || "" : "";
  const verdict = el("span", {class: "verdict", text: ev.review ?
    (ev.review.verdict === "correct" ? "✓ correct" : "✗ false alarm") : ""});
  const send = (v) => async () => {
    try {
      const r = await api(`/api/events/${ev.id}/review`, {method: "POST",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf || ""},
        body: JSON.stringify({verdict: v, note: note.value})});
      verdict.textContent = r.review.verdict === "correct" ? "✓ correct" : "✗ false alarm";
      verdict.className = "verdict saved";
    } catch (e) { verdict.textContent = `not saved: ${e.message}`; }
  };
  const ok = el("button", {type: "button", class: "correct", text: "Correct"});
  const bad = el("button", {type: "button", class: "false-alarm", text: "False alarm"});
  ok.onclick = send("correct"); bad.onclick = send("false_alarm");
  li.append(el("div", {class: "review"}, ok, bad, note, verdict));
  return li;
}

async function loadEvents() {
  const {events} = await api("/api/events?limit=100");
  const key = JSON.stringify(events.map((e) => [e.id, e.end, e.clip, e.clip_withheld]));
  if (key === lastEvents) return;
  lastEvents = key;
  $("events-empty").hidden = events.length > 0;
  const list = $("events");
  const keep = new Map([...list.children].map((li) => [li.dataset.id, li]));
  list.replaceChildren(...events.map((ev) => {
    const old = keep.get(ev.id);  // an unchanged item keeps its player (and what is being typed)
    return old && old.dataset.key === JSON.stringify([ev.end, ev.clip]) ? old :
      eventItem(ev);
  }));
  for (const li of list.children) {
    const ev = events.find((e) => e.id === li.dataset.id);
    li.dataset.key = JSON.stringify([ev.end, ev.clip]);
  }
}

async function start() {
  const st = await api("/api/status");
  rules = st.rules; history = st.history;
  if (st.latest) showNow(st.latest);
  $("feed").textContent = st.daemon; $("feed").className = "pill " + (st.latest ? "ok" : "bad");
  schedule();
  await loadEvents();
  const es = new EventSource("/api/live");
  let lastCount = null;
  es.onmessage = (e) => {
    const m = JSON.parse(e.data);
    history.push([m.time, m.dbfs, m.rules.map((r) => r.score)]);
    while (history.length && m.time - history[0][0] > WINDOW_S) history.shift();
    rules = m.rules.map((r) => ({name: r.name, enter: r.enter, release: r.release}));
    showNow(m); schedule(); lastMessage = Date.now();
    $("feed").textContent = "live"; $("feed").className = "pill ok";
    const count = JSON.stringify(m.events) + m.rules.map((r) => r.active).join();
    if (count !== lastCount) { lastCount = count; loadEvents().catch(() => {}); }
  };
  es.onerror = () => { $("feed").textContent = "reconnecting…"; $("feed").className = "pill bad"; };
  setInterval(() => loadEvents().catch(() => {}), 5000);
  setInterval(() => {  // no window for 5 s: the daemon is stopped or stuck; say so rather than show old news
    if (Date.now() - lastMessage > 5000) {
      $("feed").textContent = "daemon silent"; $("feed").className = "pill bad";
      $("mic").textContent = "mic ?"; $("mic").className = "pill";
    }
  }, 1000);
  window.addEventListener("resize", schedule);
}

session().then(start).catch(() => {});
