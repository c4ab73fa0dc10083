// Draws every <canvas data-chart="ID"> from the JSON in <script type="application/json" id="ID"> with the
// vendored Chart.js. Values arrive as numbers or decimal strings; null is a gap. Tables carry the same data.
(function () {
  "use strict";
  var palette = ["#1d4ed8", "#dc2626", "#15803d", "#9333ea", "#ea580c"];

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    data.datasets.forEach(function (set, index) {
      var color = palette[index % palette.length];
      set.data = set.data.map(function (value) { return value === null ? null : Number(value); });
      set.borderColor = color;
      set.backgroundColor = color + "66";
      set.pointRadius = 2;
      set.spanGaps = false;
    });
    new Chart(canvas, {
      type: canvas.dataset.kind || "line",
      data: data,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true } }
      }
    });
    canvas.dataset.drawn = "true";
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  });
})();
