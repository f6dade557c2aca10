/* The 統計 page's charts: each <div class="chart" data-chart='{...}'> becomes an ECharts chart
   (canvas). The numbers are in the table under it; clicking a bar or point opens the list of
   the items behind it (the series' "links"). No inline script: the console's CSP forbids it. */
(function () {
  "use strict";
  var COLOURS = { red: "#c62828", yellow: "#f9a825", blue: "#1565c0" };

  function option(spec) {
    var horizontal = spec.kind === "hbar";
    var stacked = spec.kind === "stacked";
    var series = spec.series.map(function (s) {
      var one = {
        name: s.name,
        type: spec.kind === "line" ? "line" : "bar",
        data: s.data,
        cursor: "pointer",
        emphasis: { focus: "series" }
      };
      if (stacked) { one.stack = "all"; }
      if (s.colour && COLOURS[s.colour]) { one.itemStyle = { color: COLOURS[s.colour] }; }
      if (horizontal || spec.kind === "line") { one.label = { show: true, position: horizontal ? "right" : "top" }; }
      return one;
    });
    var categoryAxis = { type: "category", data: spec.categories, inverse: horizontal };
    var valueAxis = { type: "value", minInterval: 1 };
    return {
      animation: false,
      // Tooltips drawn on the canvas: the HTML ones carry inline styles, which the CSP refuses.
      tooltip: { trigger: horizontal ? "item" : "axis", renderMode: "richText" },
      legend: { show: spec.series.length > 1, top: 0 },
      grid: { left: 8, right: 24, top: spec.series.length > 1 ? 32 : 12, bottom: 8, containLabel: true },
      xAxis: horizontal ? valueAxis : categoryAxis,
      yAxis: horizontal ? categoryAxis : valueAxis,
      series: series
    };
  }

  function draw(el) {
    var spec = JSON.parse(el.getAttribute("data-chart"));
    if (spec.kind === "hbar") {
      el.style.height = Math.max(160, 28 * spec.categories.length + 40) + "px";
    }
    var chart = window.echarts.init(el, null, { renderer: "canvas" });
    chart.setOption(option(spec));
    chart.on("click", function (p) {
      var s = spec.series[p.seriesIndex];
      var link = s && s.links ? s.links[p.dataIndex] : null;
      if (link) { window.location.assign(link); }
    });
    window.addEventListener("resize", function () { chart.resize(); });
    el.setAttribute("data-drawn", "1");
  }

  function start() {
    if (!window.echarts) { return; }
    Array.prototype.forEach.call(document.querySelectorAll("div.chart[data-chart]"), draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
