/* The health dashboard: reads /api/v1/health (session cookie) every 30 s and draws it with ECharts. */
(function () {
  "use strict";
  var REFRESH_MS = 30000;
  var YELLOW = "#f5b800", BLUE = "#3370ff", GREEN = "#34c724", RED = "#f54a45", GREY = "#8f959e";
  var range = "today", data = null, charts = {};

  function chart(id) {
    if (!charts[id]) charts[id] = echarts.init(document.getElementById(id));
    return charts[id];
  }
  function minutes(s) { return s === null || s === undefined ? "—" : (s / 60).toFixed(s < 600 ? 1 : 0) + " 分钟"; }
  function pct(v) { return v === null || v === undefined ? "—" : v.toFixed(1) + "%"; }
  function setFigure(name, text) { document.querySelector('[data-figure="' + name + '"]').textContent = text; }
  function empty(c, text) {
    c.setOption({ title: { text: text || "暂无数据", left: "center", top: "middle", textStyle: { color: GREY, fontSize: 13, fontWeight: "normal" } },
                  xAxis: [], yAxis: [], series: [] }, true);
  }
  var grid = { left: 8, right: 40, top: 28, bottom: 8, containLabel: true };
  var titled = { left: 8, right: 40, top: 56, bottom: 8, containLabel: true };

  function render() {
    var r = data.ranges[range];
    document.getElementById("updated").textContent = "更新于 " + data.local_time;

    // KPIs
    setFigure("processing", minutes(r.processing.overall_s));
    setFigure("anomaly", pct(r.anomalies.rate));
    var c = data.consistency, kpiC = document.getElementById("kpi-consistency");
    setFigure("consistency", c.score === null ? "—" : c.score.toFixed(1) + "%");
    kpiC.classList.toggle("yellow", !!c.yellow);
    setFigure("fcr", minutes(r.first_contact.mean_s) + " / " + minutes(r.first_contact.median_s));
    setFigure("exceptions", String(data.open_exceptions.total));
    setFigure("pushes", r.pushes.delivered + " / " + r.pushes.pending + " / " + r.pushes.dead);

    // time spent per state
    var ps = r.processing.by_state, cp = chart("chart-processing");
    if (!ps.length) empty(cp); else cp.setOption({
      title: { show: false }, grid: grid, tooltip: { trigger: "axis" },
      xAxis: { type: "value", name: "分钟" },
      yAxis: { type: "category", inverse: true, data: ps.map(function (x) { return x.label; }) },
      series: [{ type: "bar", barMaxWidth: 40, color: BLUE, label: { show: true, position: "right", formatter: function (p) { return p.value.toFixed(1); } },
                 data: ps.map(function (x) { return x.mean_s / 60; }) }]
    }, true);

    // anomalies
    var a = r.anomalies, ca = chart("chart-anomaly");
    if (!a.attempts) empty(ca, "暂无状态变更"); else ca.setOption({
      title: { show: true, text: "异常率 " + pct(a.rate) + "（共 " + a.attempts + " 次状态操作）", left: "center", textStyle: { fontSize: 13 } },
      grid: titled, tooltip: {},
      xAxis: { type: "category", axisLabel: { interval: 0 }, data: ["被拒的跳转", "强制转异常", "正常变更"] },
      yAxis: { type: "value" },
      series: [{ type: "bar", barMaxWidth: 40, label: { show: true, position: "top" },
                 data: [{ value: a.refused, itemStyle: { color: RED } }, { value: a.forced, itemStyle: { color: YELLOW } },
                        { value: a.attempts - a.refused - a.forced, itemStyle: { color: GREEN } }] }]
    }, true);

    // consistency
    var cs = r.consistency.series, cc = chart("chart-consistency");
    if (!cs.length) empty(cc, c.score === null ? "还没有一致性得分" : "此范围内没有得分"); else cc.setOption({
      title: { show: false }, grid: grid, tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: cs.map(function (p) { return p.label; }) },
      yAxis: { type: "value", min: function (v) { return Math.min(95, Math.floor(v.min)); }, max: 100 },
      series: [{ type: "line", color: BLUE, label: { show: cs.length <= 8, formatter: "{c}" },
                 data: cs.map(function (p) { return { value: p.score, itemStyle: { color: p.yellow ? YELLOW : BLUE } }; }),
                 markLine: { symbol: "none", lineStyle: { color: YELLOW, type: "dashed" }, label: { formatter: "98.5%", position: "insideEndTop", color: "#a36b00" },
                             data: [{ yAxis: data.consistency.threshold }] } }]
    }, true);

    // first-contact resolution
    var f = r.first_contact, cf = chart("chart-fcr");
    if (!f.answered) empty(cf, "此范围内没有已解决的咨询"); else cf.setOption({
      title: { show: true, text: "已解决 " + f.answered + " 件 · 未解决 " + data.open_inquiries + " 件", left: "center", textStyle: { fontSize: 13 } },
      grid: titled, tooltip: {},
      xAxis: { type: "category", data: ["平均", "中位"] }, yAxis: { type: "value", name: "分钟" },
      series: [{ type: "bar", barMaxWidth: 40, color: BLUE, label: { show: true, position: "top", formatter: function (p) { return p.value.toFixed(1); } },
                 data: [f.mean_s / 60, f.median_s / 60] }]
    }, true);

    // open exceptions by kind and age
    var ex = data.open_exceptions, ce = chart("chart-exceptions"), colors = [GREEN, BLUE, YELLOW, RED];
    if (!ex.total) empty(ce, "没有未处理的异常"); else ce.setOption({
      title: { show: false }, grid: grid, tooltip: { trigger: "axis" }, legend: { top: 0, textStyle: { fontSize: 11 } },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", inverse: true, data: ex.by_kind.map(function (k) { return k.label; }) },
      series: ex.buckets.map(function (b, i) {
        return { name: b.label, type: "bar", barMaxWidth: 40, stack: "age", color: colors[i],
                 data: ex.by_kind.map(function (k) { return k.ages[b.key]; }) };
      })
    }, true);

    // orders by state
    var os = r.orders_by_state, co = chart("chart-orders");
    if (!os.length) empty(co, "此范围内没有新订单"); else co.setOption({
      title: { show: false }, grid: grid, tooltip: {},
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", inverse: true, data: os.map(function (x) { return x.label; }) },
      series: [{ type: "bar", barMaxWidth: 40, color: BLUE, label: { show: true, position: "right" }, data: os.map(function (x) { return x.count; }) }]
    }, true);

    // pushes by channel
    var pb = r.pushes.by_channel, cpu = chart("chart-pushes");
    var kinds = [["delivered", "已送达", GREEN], ["pending", "等待中", YELLOW], ["dead", "已失败", RED]];
    if (!pb.length) empty(cpu, "此范围内没有外发消息"); else cpu.setOption({
      title: { show: false }, grid: grid, tooltip: { trigger: "axis" }, legend: { top: 0 },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", inverse: true, data: pb.map(function (x) { return x.label; }) },
      series: kinds.map(function (k) {
        return { name: k[1], type: "bar", barMaxWidth: 40, stack: "all", color: k[2], data: pb.map(function (x) { return x[k[0]]; }) };
      })
    }, true);
  }

  function notice(text) {
    var n = document.getElementById("notice");
    n.textContent = text || "";
    n.hidden = !text;
  }

  function load() {
    fetch("/api/v1/health", { credentials: "same-origin", cache: "no-store" }).then(function (res) {
      if (res.status === 401 || res.status === 403) {
        notice("登录已过期，请在企业微信里重新发送「概况」获取看板链接。");
        return null;
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    }).then(function (json) {
      if (!json) return;
      data = json;
      notice("");
      render();
      document.body.setAttribute("data-loaded", "1");
    }).catch(function () {
      notice("暂时连不上服务器，稍后自动重试。");
    });
  }

  document.getElementById("ranges").addEventListener("click", function (e) {
    var r = e.target.getAttribute("data-range");
    if (!r) return;
    range = r;
    Array.prototype.forEach.call(document.querySelectorAll("#ranges button"), function (b) {
      b.classList.toggle("on", b.getAttribute("data-range") === r);
    });
    if (data) render();
  });
  window.addEventListener("resize", function () { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); });
  load();
  setInterval(load, REFRESH_MS);
})();
