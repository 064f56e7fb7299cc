// The supervisor page: reads the live feed (Server-Sent Events over fetch, so the token
// travels in a header, never in a URL), shows a banner within 2 s when the feed stops, and
// sounds the alarm. The only presses are RETURN and STOP.
"use strict";
const WATCHDOG_MS = 1500;
const $ = (id) => document.getElementById(id);
let token = null;
let lastData = 0;
let alarmOn = false;
let audio = null;
const trend = [];

function readToken() {
  const m = location.hash.match(/token=([A-Za-z0-9_-]+)/);
  if (m) {
    localStorage.setItem("invtable-token", m[1]);
    history.replaceState(null, "", location.pathname); // the token leaves the address bar
  }
  return localStorage.getItem("invtable-token");
}

function requestId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b); // also in plain-http pages (randomUUID is not)
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function setLost(lost) {
  $("banner").classList.toggle("hidden", !lost);
}

function fmt(s) {
  if (s === null || s === undefined) return "-";
  const m = Math.floor(s / 60), r = Math.floor(s % 60);
  return `${m}:${String(r).padStart(2, "0")}`;
}

function drawTrend(s) {
  const c = $("trend"), g = c.getContext("2d");
  g.clearRect(0, 0, c.width, c.height);
  if (trend.length < 2) return;
  const lo = s.upright_deg - 5, hi = s.max_angle_deg + 5;
  const y = (a) => c.height - ((a - lo) / (hi - lo)) * c.height;
  g.strokeStyle = "#555"; g.beginPath(); g.moveTo(0, y(0)); g.lineTo(c.width, y(0)); g.stroke();
  g.strokeStyle = "#4cf"; g.lineWidth = 2; g.beginPath();
  trend.forEach((p, i) => {
    const x = (i / 1200) * c.width;
    if (i === 0) g.moveTo(x, y(p)); else g.lineTo(x, y(p));
  });
  g.stroke();
}

function alarmSound(on) {
  if (!audio) return;
  if (on && !audio.osc) {
    const osc = audio.ctx.createOscillator();
    osc.type = "square"; osc.frequency.value = 880;
    const lfo = audio.ctx.createOscillator(); lfo.frequency.value = 2;
    const gain = audio.ctx.createGain(); gain.gain.value = 0.3;
    const lfoGain = audio.ctx.createGain(); lfoGain.gain.value = 0.3;
    lfo.connect(lfoGain); lfoGain.connect(gain.gain);
    osc.connect(gain); gain.connect(audio.ctx.destination);
    osc.start(); lfo.start();
    audio.osc = osc; audio.lfo = lfo;
  } else if (!on && audio.osc) {
    audio.osc.stop(); audio.lfo.stop(); audio.osc = null;
  }
}

function show(s) {
  $("state").textContent = s.state.replace(/_/g, " ");
  $("state-text").textContent = s.state_text;
  $("user").textContent = s.user || "(no user chosen)";
  $("program").textContent = s.program || "(config's session)";
  const a = s.angle_deg;
  $("angle").textContent = a === null ? "--" : a.toFixed(1);
  if (a !== null) {
    // -90 (upright side) .. +90 (head down) across the half circle
    const rad = (Math.max(-90, Math.min(90, a)) * Math.PI) / 180;
    $("needle").setAttribute("x2", (90 * Math.sin(rad)).toFixed(1));
    $("needle").setAttribute("y2", (-90 * Math.cos(rad)).toFixed(1));
    trend.push(a); if (trend.length > 1200) trend.shift();
    drawTrend(s);
  }
  $("session").textContent = s.time_left_s === null ? "upright" : fmt(s.session_s);
  $("left").textContent = s.time_left_s === null ? "-" : fmt(s.time_left_s);
  $("step").textContent = s.step ? `${s.step} of ${s.steps} (${s.step_target_deg} deg)` : "-";
  const ank = s.interlocks.ankle_locked, es = s.interlocks.estop_pressed;
  $("ankle").textContent = ank ? "locked" : "OPEN"; $("ankle").className = ank ? "good" : "bad";
  $("estop").textContent = es ? "PRESSED" : "released"; $("estop").className = es ? "bad" : "good";
  $("brake").textContent = s.brake ? "on" : "off";
  const ul = $("faults"); ul.textContent = "";
  (s.faults.length ? s.faults : [{ code: "", reason: "none" }]).forEach((f) => {
    const li = document.createElement("li"); li.textContent = f.reason; ul.appendChild(li);
  });
  const viewer = s.role !== "operator";
  $("btn-return").disabled = viewer; $("btn-stop").disabled = viewer;
  if (s.alarm !== alarmOn) {
    alarmOn = s.alarm;
    $("alarm").classList.toggle("hidden", !alarmOn);
    document.title = alarmOn ? "ALARM - inversion table" : "Inversion table - supervisor";
    alarmSound(alarmOn);
    if (alarmOn && window.Notification && Notification.permission === "granted") {
      new Notification("Inversion table ALARM", { body: s.alarm_reasons.join(", ") });
    }
  }
  $("alarm-reasons").textContent = s.alarm_reasons.join(", ");
}

async function stream() {
  for (;;) {
    if (!token) { $("login").classList.remove("hidden"); setLost(true); return; }
    try {
      const resp = await fetch("/api/stream", { headers: { Authorization: `Bearer ${token}` } });
      if (resp.status === 401 || resp.status === 403) {
        localStorage.removeItem("invtable-token"); token = null; continue;
      }
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const reader = resp.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, i); buf = buf.slice(i + 2);
          const line = chunk.split("\n").find((l) => l.startsWith("data: "));
          if (line) { lastData = Date.now(); setLost(false); show(JSON.parse(line.slice(6))); }
        }
      }
    } catch (e) { /* shown by the banner */ }
    setLost(true);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function press(button) {
  $("action-result").textContent = `sending ${button.toUpperCase()}...`;
  try {
    const resp = await fetch(`/api/${button}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ request_id: requestId() }),
    });
    const body = await resp.json();
    $("action-result").textContent = resp.ok ? `${button.toUpperCase()} sent` : body.error;
  } catch (e) {
    $("action-result").textContent = `${button.toUpperCase()} NOT sent: no connection`;
  }
}

setInterval(() => { if (Date.now() - lastData > WATCHDOG_MS) setLost(true); }, 250);
$("btn-return").addEventListener("click", () => press("return"));
$("btn-stop").addEventListener("click", () => press("stop"));
$("btn-alerts").addEventListener("click", () => {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (Ctx && !audio) audio = { ctx: new Ctx(), osc: null };
  if (window.Notification) Notification.requestPermission();
  $("btn-alerts").textContent = "Alarm sound and notifications on";
  if (alarmOn) alarmSound(true);
});
$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem("invtable-token", $("token-input").value.trim());
  token = localStorage.getItem("invtable-token");
  $("login").classList.add("hidden");
  stream();
});
token = readToken();
stream();
