// The overview's charts: actions, denials and failures per agent per minute (uPlot).
// Live: the data is polled every 15 s, and sooner (debounced) when the live socket
// reports an action; the panels below poll the same way through htmx.
(function () {
  "use strict";
  var POLL_MS = 15000;
  var SOON_MS = 1500;
  var COLORS = ["#2456c9", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#6b7280"];
  var charts = {};
  var agentsKey = "";
  var soon = null;

  function integerTicks() {
    return [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];
  }

  function widthOf(el) {
    return Math.max(280, el.clientWidth);
  }

  function options(el, agents) {
    return {
      width: widthOf(el),
      height: 170,
      cursor: { drag: { x: false, y: false } },
      // Times in UTC on a 24-hour clock, as every other page shows them.
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      scales: {
        x: { time: true },
        y: { range: function (u, min, max) { return [0, Math.max(4, Math.ceil(max * 1.1))]; } },
      },
      axes: [
        { stroke: "#65707d", grid: { stroke: "#eef1f4" }, values: "{HH}:{mm}" },
        { stroke: "#65707d", grid: { stroke: "#eef1f4" }, incrs: integerTicks(), size: 48 },
      ],
      series: [{ value: "{HH}:{mm} UTC" }].concat(agents.map(function (agent, i) {
        var color = agent.slug ? COLORS[i % (COLORS.length - 1)] : COLORS[COLORS.length - 1];
        return { label: agent.name, stroke: color, width: 2, points: { size: 4 } };
      })),
    };
  }

  function draw(data) {
    var key = data.agents.map(function (a) { return a.slug; }).join(",");
    document.querySelectorAll("#activity .chart").forEach(function (figure) {
      var name = figure.dataset.series;
      var rows = [data.x].concat(data.series[name]);
      if (data.agents.length === 0) {
        rows = [data.x, data.x.map(function () { return 0; })];
      }
      var total = figure.querySelector(".total");
      if (total) total.textContent = data.totals[name] + " in the hour";
      if (charts[name] && key === agentsKey) {
        charts[name].setData(rows);
        return;
      }
      if (charts[name]) charts[name].destroy();
      // Nobody active: a flat line on empty axes, no legend to read.
      var agents = data.agents.length ? data.agents : [{ slug: "", name: "none" }];
      var opts = options(figure, agents);
      opts.legend = { show: data.agents.length > 0 };
      charts[name] = new uPlot(opts, rows, figure);
    });
    agentsKey = key;
    var empty = document.querySelector("#activity .chart-empty");
    if (empty) empty.hidden = data.totals.actions > 0;
  }

  function refresh() {
    var section = document.getElementById("activity");
    if (!section || document.hidden) return;
    fetch(section.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        // A redirect to the login page (session ended) is not data: keep what is drawn.
        var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        return response.ok && json ? response.json() : null;
      })
      .then(function (data) { if (data) draw(data); })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  function refreshSoon() {
    if (soon) return;
    soon = setTimeout(function () {
      soon = null;
      refresh();
      if (window.htmx) window.htmx.trigger(document.body, "overview-refresh");
    }, SOON_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var initial = document.getElementById("overview-series");
    if (!initial || typeof uPlot === "undefined") return;
    draw(JSON.parse(initial.textContent));
    setInterval(refresh, POLL_MS);
    document.body.addEventListener("htmx:wsAfterMessage", refreshSoon);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) refreshSoon(); });
    window.addEventListener("resize", function () {
      Object.keys(charts).forEach(function (name) {
        var figure = document.querySelector('#activity .chart[data-series="' + name + '"]');
        charts[name].setSize({ width: widthOf(figure), height: 170 });
      });
    });
  });
})();
