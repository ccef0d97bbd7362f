// The /perf dashboard: renders each snapshot pushed on /perf/events. Text only goes
// through textContent (never innerHTML), so nothing in the data can become markup.
"use strict";
(function () {
  const $ = (sel) => document.querySelector(sel);
  const fmt = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  const pct = (v, digits = 1) => (v === null || v === undefined ? "–" : (v * 100).toFixed(digits) + " %");
  let charts = null;

  function cell(row, field, text, cls) {
    const td = document.createElement("td");
    td.dataset.field = field;
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function renderObjectives(objectives) {
    const body = $("#objectives tbody");
    body.replaceChildren();
    for (const o of objectives) {
      const tr = document.createElement("tr");
      tr.dataset.objective = o.name;
      cell(tr, "name", o.name);
      const bar = o.threshold_ms === null ? "not 5xx" : "< " + o.threshold_ms + " ms";
      cell(tr, "target", (o.objective * 100).toFixed(2) + " % " + bar);
      cell(tr, "sli", o.sli === null ? "–" : (o.sli * 100).toFixed(3) + " %");
      const left = o.budget_left;
      cell(tr, "budget_left", pct(left), left === null ? "" : left < 0 ? "over" : left < 0.25 ? "near" : "good");
      cell(tr, "burn_1h", fmt(o.burn_rates["1h/5m"], 2), (o.burn_rates["1h/5m"] || 0) >= 14.4 ? "over" : "");
      cell(tr, "burn_6h", fmt(o.burn_rates["6h/30m"], 2), (o.burn_rates["6h/30m"] || 0) >= 6 ? "over" : "");
      cell(tr, "total", String(o.total));
      body.appendChild(tr);
    }
  }

  function renderRoutes(routes) {
    const body = $("#routes tbody");
    body.replaceChildren();
    const sorted = [...routes].sort((a, b) => (b.p95_ms || 0) - (a.p95_ms || 0));
    for (const r of sorted) {
      const tr = document.createElement("tr");
      tr.dataset.route = r.method + " " + r.route;
      cell(tr, "route", r.method + " " + r.route);
      cell(tr, "priority", r.priority);
      cell(tr, "rps", fmt(r.rps, 2));
      cell(tr, "count", String(r.count));
      cell(tr, "p50_ms", fmt(r.p50_ms, 2));
      const over = r.target_ms !== null && r.p95_ms !== null && r.p95_ms > r.target_ms;
      cell(tr, "p95_ms", fmt(r.p95_ms, 2), over ? "over" : "");
      cell(tr, "p99_ms", fmt(r.p99_ms, 2));
      cell(tr, "target_ms", r.target_ms === null ? "–" : String(r.target_ms));
      cell(tr, "errors", String(r.errors), r.errors ? "over" : "");
      cell(tr, "cache_hit_ratio", pct(r.cache_hit_ratio, 0));
      body.appendChild(tr);
    }
  }

  function renderAlerts(alerts) {
    const list = $("#alerts");
    list.replaceChildren();
    if (!alerts.length) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = "none";
      list.appendChild(li);
    }
    for (const a of alerts) {
      const li = document.createElement("li");
      li.className = a.severity;
      li.dataset.fingerprint = a.fingerprint;
      li.textContent = (a.state === "firing" ? a.severity.toUpperCase() : "pending") + ": " + a.summary;
      list.appendChild(li);
    }
  }

  function renderCharts(series) {
    const t = series.t;
    if (!window.uPlot || !t.length) return;
    const width = Math.max(320, $("#chart-rps").clientWidth || 600);
    const rps = [t, series.rps, series.errors];
    const p95 = [t, series.p95_critical, series.p95_standard, series.p95_bulk];
    if (!charts) {
      // Always the last hour, however little of it has data yet.
      const lastHour = (u, min, max) => [max - 3600, max];
      const base = { width: width, height: 220, scales: { x: { time: true, range: lastHour } } };
      charts = {
        rps: new uPlot({ ...base, series: [{}, { label: "req/s", stroke: "#2457a6" }, { label: "5xx/s", stroke: "#b3261e" }] }, rps, $("#chart-rps")),
        p95: new uPlot({ ...base, series: [{}, { label: "critical", stroke: "#b3261e" }, { label: "standard", stroke: "#2457a6" }, { label: "bulk", stroke: "#888" }] }, p95, $("#chart-p95")),
      };
    } else {
      charts.rps.setData(rps);
      charts.p95.setData(p95);
    }
  }

  function render(s) {
    const regime = $("#regime");
    regime.textContent = s.regime.replace("_", " ");
    regime.className = "badge " + s.regime;
    $("#scope").textContent = s.scope;
    $("#span").textContent = Math.round(s.span_s);
    $("#updated").textContent = new Date(s.generated_at * 1000).toLocaleTimeString();
    renderAlerts(s.alerts.active);
    renderObjectives(s.alerts.objectives);
    renderRoutes(s.routes);
    const pool = s.pool || {};
    $('#pool [data-field="saturation"]').textContent = pool.size ? pct(pool.in_use / pool.size, 0) + " (" + pool.in_use + " of " + pool.size + ", " + pool.waiting + " waiting)" : "–";
    const total = s.routes.reduce((sum, r) => sum + r.rps, 0);
    $('#totals [data-field="rps"]').textContent = fmt(total, 2);
    $('#totals [data-field="in_flight"]').textContent = String(s.in_flight);
    renderCharts(s.series);
    document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
  }

  const events = new EventSource("/perf/events");
  events.addEventListener("snapshot", (e) => {
    $("#status").textContent = "live";
    render(JSON.parse(e.data));
  });
  events.onerror = () => { $("#status").textContent = "reconnecting"; };
})();
