// The script and style of the page `hwsq report` writes (html.ts). Plain ES2017 in a string: it
// runs in the browser with the inlined ECharts (global `echarts`) and the JSON of
// <script id="hwsq-data">, builds one section per result file and sets window.__hwsqReport
// ({ ready, charts, sections, errors }) when it is done, for tests and automation.

export const CLIENT_CSS = `
:root { color-scheme: light; --fg: #1d232b; --muted: #5b6775; --line: #d8dee6; --bg: #f6f8fa; --bad: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
header { padding: 18px 28px 8px; border-bottom: 1px solid var(--line); background: var(--bg); }
h1 { margin: 0 0 4px; font-size: 22px; }
h2 { margin: 28px 0 6px; font-size: 18px; }
h3 { margin: 18px 0 6px; font-size: 15px; }
.meta, .note { color: var(--muted); margin: 2px 0; }
.warn { color: var(--bad); font-weight: 600; }
main { padding: 0 28px 40px; max-width: 1280px; }
section { border-bottom: 1px solid var(--line); padding-bottom: 18px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 18px; }
.chart { width: 100%; min-height: 260px; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 3px 9px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: var(--bg); font-weight: 600; }
dl.machine { display: grid; grid-template-columns: max-content 1fr; gap: 1px 14px; margin: 6px 0; }
dl.machine dt { color: var(--muted); }
dl.machine dd { margin: 0; }
.better { color: #067647; } .worse { color: var(--bad); }
`;

export const CLIENT_JS = String.raw`
(function () {
  'use strict';
  var state = { ready: false, charts: 0, sections: 0, errors: [] };
  window.__hwsqReport = state;
  var payload = JSON.parse(document.getElementById('hwsq-data').textContent);
  var root = document.getElementById('report');
  var instances = [];
  var palette = ['#2f6fdf', '#e8590c', '#2b8a3e', '#9c36b5', '#c92a2a', '#0b7285', '#5c940d', '#862e9c'];

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { if (k === 'text') e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { if (c) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function fmtNs(ns) {
    if (ns === null || ns === undefined || !isFinite(ns)) return '-';
    if (ns >= 1e9) return (ns / 1e9).toPrecision(3) + ' s';
    if (ns >= 1e6) return (ns / 1e6).toPrecision(3) + ' ms';
    if (ns >= 1e3) return (ns / 1e3).toPrecision(3) + ' us';
    return ns.toPrecision(3) + ' ns';
  }
  function round3(v) { return Number(v.toPrecision(3)).toLocaleString('en-US'); }
  function fmtBytes(n) {
    if (n >= 1073741824) return (n / 1073741824).toFixed(2) + ' GiB';
    if (n >= 1048576) return (n / 1048576).toFixed(1) + ' MiB';
    if (n >= 1024) return (n / 1024).toFixed(1) + ' KiB';
    return n + ' B';
  }
  function summary(s, fmt) {
    if (!s || !s.n) return '-';
    return s.n > 1 ? fmt(s.median) + ' (' + fmt(s.min) + '..' + fmt(s.max) + ')' : fmt(s.median);
  }
  function table(parent, header, rows) {
    var t = el('table', null, [el('thead', null, [el('tr', null, header.map(function (h) { return el('th', { text: h }); }))])]);
    var body = el('tbody');
    rows.forEach(function (r) {
      body.appendChild(el('tr', null, r.map(function (c) {
        if (c && typeof c === 'object' && c.text !== undefined) return el('td', { text: c.text, class: c.cls || '' });
        return el('td', { text: String(c) });
      })));
    });
    t.appendChild(body);
    parent.appendChild(t);
    return t;
  }
  function chart(parent, height, option) {
    var div = el('div', { class: 'chart' });
    div.style.height = height + 'px';
    parent.appendChild(div);
    var c = echarts.init(div, null, { renderer: 'canvas' });
    option.animation = false;
    option.color = option.color || palette;
    c.setOption(option);
    instances.push(c);
    state.charts++;
    return c;
  }
  function cdf(buckets, scale) {
    var total = buckets.counts.reduce(function (a, b) { return a + b; }, 0);
    var acc = 0;
    var points = [];
    for (var i = 0; i < buckets.counts.length; i++) {
      acc += buckets.counts[i];
      points.push([Math.max(buckets.upperNs[i], 1) / scale, acc / total]);
    }
    return points;
  }
  function cdfChart(parent, title, series, scale, unit) {
    return chart(parent, 320, {
      title: { text: title, left: 'center', textStyle: { fontSize: 14 } },
      tooltip: { trigger: 'axis', valueFormatter: function (v) { return (v * 100).toFixed(1) + '%'; } },
      legend: { bottom: 0, type: 'scroll' },
      grid: { left: 56, right: 24, top: 40, bottom: 60 },
      xAxis: { type: 'log', name: unit, nameLocation: 'middle', nameGap: 26, min: 'dataMin', max: 'dataMax', axisLabel: { formatter: round3 } },
      yAxis: { type: 'value', min: 0, max: 1, axisLabel: { formatter: function (v) { return Math.round(v * 100) + '%'; } } },
      series: series.map(function (s) { return { name: s.name, type: 'line', step: 'end', showSymbol: false, data: cdf(s.buckets, scale) }; })
    });
  }
  function machineBlock(parent, m, extra) {
    var rows = [];
    if (m) {
      rows.push(['CPU', m.cpuModel + (m.virtualized ? ' (virtual machine)' : '') + ', ' + m.onlineCpus + ' CPUs, ' + m.allowedCpus.length + ' allowed']);
      rows.push(['NUMA nodes', m.nodes.map(function (n) { return n.id + ': ' + (n.cpus.length ? n.cpus.length + ' CPUs' : 'no CPUs') + ', ' + fmtBytes(n.memoryBytes); }).join('; ')]);
      rows.push(['LLC', m.llc ? fmtBytes(m.llc.bytes) + ' (L' + m.llc.level + ')' : 'unknown']);
      rows.push(['kernel / Node', 'Linux ' + m.kernel + ' / Node ' + m.node + ' / hwsq ' + m.hwsq]);
      rows.push(['cgroup', 'parallelism ' + m.cgroup.parallelism + ' (' + m.cgroup.source + ')' + (m.cgroup.memoryLimitBytes !== null ? ', memory ' + fmtBytes(m.cgroup.memoryLimitBytes) : '')]);
      rows.push(['governor / THP / numa_balancing', (m.cpuGovernor ? m.cpuGovernor.join('/') : 'not exposed') + ' / ' + m.transparentHugePages + ' / ' + m.numaBalancing]);
      rows.push(['load before the run', 'loadavg ' + m.load.loadavg1.toFixed(2) + ', ' + (m.load.busyCpus === null ? '?' : m.load.busyCpus.toFixed(2)) + ' CPUs busy' + (m.load.otherLoadSeen ? ' -- other load seen' : '')]);
    }
    (extra || []).forEach(function (r) { rows.push(r); });
    var dl = el('dl', { class: 'machine' });
    rows.forEach(function (r) { dl.appendChild(el('dt', { text: r[0] })); dl.appendChild(el('dd', { text: r[1], class: /other load seen/.test(r[1]) ? 'warn' : '' })); });
    parent.appendChild(dl);
  }

  function heatmap(parent, title, r, values, fmt, unit, lowIsGood) {
    var points = [];
    var all = [];
    r.cpuNodes.forEach(function (cpu, i) {
      r.memNodes.forEach(function (mem, j) {
        var v = values[i][j];
        if (v === null || v === undefined) return;
        var cell = r.cells.filter(function (c) { return c.cpuNode === cpu && c.memNode === mem; })[0];
        points.push({ value: [j, i, v], trusted: !cell || cell.trusted });
        all.push(v);
      });
    });
    var lo = Math.min.apply(null, all.length ? all : [0]);
    var hi = Math.max.apply(null, all.length ? all : [1]);
    var colors = ['#2b8a3e', '#f7f3d0', '#c92a2a'];
    return chart(parent, 120 + 60 * r.cpuNodes.length, {
      title: { text: title, left: 'center', textStyle: { fontSize: 14 } },
      tooltip: { formatter: function (p) { return 'CPU node ' + r.cpuNodes[p.value[1]] + ' -> memory node ' + r.memNodes[p.value[0]] + ': ' + fmt(p.value[2]) + ' ' + unit + (p.data.trusted ? '' : ' (untrusted)'); } },
      grid: { left: 110, right: 24, top: 64, bottom: 56 },
      xAxis: { type: 'category', position: 'top', data: r.memNodes.map(function (n) { return 'memory node ' + n; }), splitArea: { show: true } },
      yAxis: { type: 'category', data: r.cpuNodes.map(function (n) { return 'CPU node ' + n; }), inverse: true, splitArea: { show: true } },
      visualMap: { min: lo, max: hi === lo ? lo + 1 : hi, calculable: true, orient: 'horizontal', left: 'center', bottom: 4, itemHeight: 120, inRange: { color: lowIsGood ? colors : colors.slice().reverse() }, formatter: function (v) { return fmt(v); } },
      series: [{ type: 'heatmap', data: points, label: { show: true, formatter: function (p) { return fmt(p.value[2]) + (p.data.trusted ? '' : ' ?'); } } }]
    });
  }

  var renderers = {
    memory: function (sec, d) {
      var r = d.results;
      sec.appendChild(el('p', { class: 'note', text: fmtBytes(r.sizeBytes) + ' per memory node' + (r.llcBytes ? ' (LLC ' + fmtBytes(r.llcBytes) + ')' : '') + ', median of ' + r.reps + ' samples of ' + r.durationMs + ' ms per cell. Rows: CPU nodes; columns: memory nodes (CPU-less memory nodes are columns only).' }));
      if (!r.trusted) sec.appendChild(el('p', { class: 'warn', text: 'Some cells are untrusted (marked ?): their pages or threads were not where they should be.' }));
      var g = el('div', { class: 'grid' });
      sec.appendChild(g);
      heatmap(g, 'Idle latency (ns per dependent load)', r, r.latencyNs, function (v) { return v.toFixed(1); }, 'ns', true);
      heatmap(g, 'Read bandwidth (GB/s, one thread per CPU of the row node)', r, r.bandwidthBytesPerSec.map(function (row) { return row.map(function (v) { return v === null ? null : v / 1e9; }); }), function (v) { return v.toFixed(2); }, 'GB/s', false);
      table(sec, ['memory node', 'pages', 'placement before', 'after', 'huge pages'], r.buffers.map(function (b) {
        return ['node ' + b.memNode, b.placement.pages, { text: b.placement.verified ? 'verified' : 'NOT verified', cls: b.placement.verified ? 'better' : 'worse' },
          b.placementAfter ? { text: b.placementAfter.verified ? 'verified' : 'moved', cls: b.placementAfter.verified ? 'better' : 'worse' } : '-',
          b.hugePages.bytes === null ? 'unknown' : fmtBytes(b.hugePages.bytes)];
      }));
      (r.problems || []).forEach(function (p) { sec.appendChild(el('p', { class: 'warn', text: p })); });
    },
    latency: function (sec, d) {
      var r = d.results;
      sec.appendChild(el('p', { class: 'note', text: r.workers + ' workers on nodes ' + r.nodes.join(',') + ', ' + r.stealPolicy + ' stealing; submit -> first instruction of each task.' }));
      table(sec, ['burst', 'reps', 'p50', 'p90', 'p99', 'max'], r.bursts.map(function (b) {
        return [b.runtime + ' x ' + b.size, b.reps.length, summary(b.p50Ns, fmtNs), summary(b.p90Ns, fmtNs), summary(b.p99Ns, fmtNs), summary(b.maxNs, fmtNs)];
      }));
      table(sec, ['idle round trip', 'rounds', 'p50', 'p90', 'p99', 'max'], r.roundTrips.map(function (t) {
        return [t.runtime, t.rounds, fmtNs(t.quantiles.p50Ns), fmtNs(t.quantiles.p90Ns), fmtNs(t.quantiles.p99Ns), fmtNs(t.quantiles.maxNs)];
      }));
      var g = el('div', { class: 'grid' });
      sec.appendChild(g);
      cdfChart(g, 'Burst latency CDF (all repetitions)', r.bursts.map(function (b) { return { name: b.runtime + ' x ' + b.size, buckets: b.buckets }; }), 1000, 'us');
      chart(g, 320, {
        title: { text: 'Burst latency quantiles (median over repetitions)', left: 'center', textStyle: { fontSize: 14 } },
        tooltip: { trigger: 'axis', valueFormatter: function (v) { return fmtNs(v * 1000); } },
        legend: { bottom: 0 },
        grid: { left: 64, right: 24, top: 40, bottom: 60 },
        xAxis: { type: 'category', data: r.bursts.map(function (b) { return b.runtime + ' x ' + b.size; }) },
        yAxis: { type: 'log', name: 'us', axisLabel: { formatter: round3 } },
        series: ['p50Ns', 'p90Ns', 'p99Ns', 'maxNs'].map(function (k) { return { name: k.replace('Ns', ''), type: 'bar', data: r.bursts.map(function (b) { return Math.max(b[k].median / 1000, 0.001); }) }; })
      });
      if (r.roundTrips.length) cdfChart(g, 'Idle round trip CDF', r.roundTrips.map(function (t) { return { name: t.runtime, buckets: t.buckets }; }), 1000, 'us');
      (r.absent || []).forEach(function (a) { sec.appendChild(el('p', { class: 'warn', text: a.runtime + ': absent (' + a.reason + ')' })); });
    },
    compare: function (sec, d) {
      var r = d.results;
      sec.appendChild(el('p', { class: 'note', text: r.workers + ' workers on nodes ' + r.nodes.join(',') + '; ' + r.tasksPerNode + ' tasks per node touching ' + fmtBytes(r.bytesPerTask) + ' each of a node-local ' + fmtBytes(r.bufferBytes) + ' buffer; ' + r.reps + ' runs per policy.' }));
      (r.notes || []).forEach(function (n) { sec.appendChild(el('p', { class: 'warn', text: n })); });
      function val(unit, v) {
        if (!isFinite(v)) return '-';
        if (unit === '%') return (v * 100).toFixed(1) + '%';
        if (unit === 'ns') return fmtNs(v);
        if (unit === 'tasks/s') return Math.round(v).toLocaleString('en-US') + '/s';
        return v.toFixed(1);
      }
      table(sec, ['metric', 'flat', 'hierarchical', 'change'], r.table.map(function (row) {
        var c = row.changePct;
        var good = c !== null && ((row.better === 'lower' && c < 0) || (row.better === 'higher' && c > 0));
        return [row.metric, summary(row.flat, function (v) { return val(row.unit, v); }), summary(row.hierarchical, function (v) { return val(row.unit, v); }),
          { text: c === null ? '-' : (c >= 0 ? '+' : '') + c.toFixed(1) + '%', cls: c === null || c === 0 ? '' : good ? 'better' : 'worse' }];
      }));
      var g = el('div', { class: 'grid' });
      sec.appendChild(g);
      chart(g, 340, {
        title: { text: 'flat vs hierarchical (medians)', left: 'center', textStyle: { fontSize: 14 } },
        tooltip: { trigger: 'axis' },
        legend: { bottom: 0 },
        grid: { left: 200, right: 30, top: 40, bottom: 50 },
        xAxis: { type: 'value', name: '% of the larger' },
        yAxis: { type: 'category', data: r.table.map(function (row) { return row.metric; }), inverse: true },
        series: ['flat', 'hierarchical'].map(function (p) {
          return { name: p, type: 'bar', data: r.table.map(function (row) {
            var m = Math.max(row.flat.median, row.hierarchical.median);
            return m > 0 ? +(row[p].median / m * 100).toFixed(1) : 0;
          }) };
        })
      });
      var series = ['flat', 'hierarchical'].filter(function (p) { return r.policies[p]; }).map(function (p) { return { name: p, buckets: r.policies[p].latencyBuckets }; });
      if (series.length) cdfChart(g, 'Scheduling latency CDF by policy', series, 1000, 'us');
    },
    pools: function (sec, d) {
      var r = d.results;
      sec.appendChild(el('p', { class: 'note', text: r.workers + ' workers in every pool, the same task module.' }));
      var g = el('div', { class: 'grid' });
      sec.appendChild(g);
      chart(g, 320, {
        title: { text: 'Throughput, tiny tasks (tasks/s, higher is better)', left: 'center', textStyle: { fontSize: 14 } },
        tooltip: { trigger: 'axis' },
        grid: { left: 160, right: 30, top: 40, bottom: 30 },
        xAxis: { type: 'value' },
        yAxis: { type: 'category', data: r.throughput.map(function (t) { return t.name; }), inverse: true },
        series: [{ type: 'bar', data: r.throughput.map(function (t) { return Math.round(t.tasksPerSec); }), label: { show: true, position: 'right' } }]
      });
      chart(g, 320, {
        title: { text: 'Round trip (us, lower is better)', left: 'center', textStyle: { fontSize: 14 } },
        tooltip: { trigger: 'axis' },
        legend: { bottom: 0 },
        grid: { left: 64, right: 24, top: 40, bottom: 60 },
        xAxis: { type: 'category', data: r.latency.map(function (l) { return l.name; }) },
        yAxis: { type: 'value', name: 'us' },
        series: [{ name: 'p50', type: 'bar', data: r.latency.map(function (l) { return +l.p50Us.toFixed(2); }) }, { name: 'p99', type: 'bar', data: r.latency.map(function (l) { return +l.p99Us.toFixed(2); }) }]
      });
      table(sec, ['ratio (hwsq / pool)', 'value'], Object.keys(r.ratios).map(function (k) { return [k, r.ratios[k] === null ? '-' : r.ratios[k].toFixed(2)]; }));
    },
    spawn: function (sec, d) {
      var rows = [
        ['hwsq C++ external (batches of 256)', d.hwsq.cpp.externalBatch256], ['hwsq C++ inside', d.hwsq.cpp.insideTail],
        ['hwsq JS spawnNative(count)', d.hwsq.js.batch], ['hwsq JS calls of 1024', d.hwsq.js.batches1024], ['hwsq JS inside', d.hwsq.js.inside], ['hwsq JS one call per task', d.hwsq.js.single]
      ];
      if (d.tbb && d.tbb.available) rows.push(['oneTBB external', d.tbb.external], ['oneTBB inside', d.tbb.inside]);
      if (d.go && d.go.available) rows.push(['Go external', d.go.external], ['Go inside', d.go.inside]);
      sec.appendChild(el('p', { class: 'note', text: d.tasks + ' no-op tasks, ' + d.workers + ' workers, median of ' + d.reps + '.' }));
      chart(sec, 60 + 32 * rows.length, {
        title: { text: 'Spawn + complete, ns per task (lower is better)', left: 'center', textStyle: { fontSize: 14 } },
        tooltip: { trigger: 'axis' },
        grid: { left: 230, right: 40, top: 40, bottom: 30 },
        xAxis: { type: 'value' },
        yAxis: { type: 'category', data: rows.map(function (r) { return r[0]; }), inverse: true },
        series: [{ type: 'bar', data: rows.map(function (r) { return +r[1].nsPerTask.toFixed(1); }), label: { show: true, position: 'right' } }]
      });
    }
  };

  var meta = document.getElementById('meta');
  meta.textContent = payload.inputs.length + ' result file(s); made by ' + payload.generator + ' on ' + payload.generatedAt + ' with ' + payload.chartLibrary + ' inlined';
  var titles = { memory: 'Memory latency and bandwidth matrices', latency: 'Scheduling latency', compare: 'Flat vs hierarchical work stealing', pools: 'hwsq vs piscina and tinypool', spawn: 'Spawn throughput' };
  payload.inputs.forEach(function (input) {
    var d = input.data;
    var sec = el('section', { 'data-kind': input.kind });
    root.appendChild(sec);
    sec.appendChild(el('h2', { text: titles[input.kind] + ' -- ' + input.file }));
    if (d.startedAt) sec.appendChild(el('p', { class: 'meta', text: 'run ' + d.startedAt + ', ' + (d.durationMs / 1000).toFixed(1) + ' s' + (d.interrupted ? ' -- interrupted (Ctrl-C): partial results' : '') }));
    machineBlock(sec, d.machine, d.machine ? [] : [['Node', String(d.node)], ['NUMA nodes', String(d.numaNodes)]]);
    try {
      renderers[input.kind](sec, d);
    } catch (err) {
      state.errors.push(input.file + ': ' + err.message);
      sec.appendChild(el('p', { class: 'warn', text: 'could not render: ' + err.message }));
    }
    state.sections++;
  });
  window.addEventListener('resize', function () { instances.forEach(function (c) { c.resize(); }); });
  state.ready = true;
})();
`;
