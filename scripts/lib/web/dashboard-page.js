// The dashboard page, in the browser: renders /api/snapshot, draws /api/history with uPlot and
// follows /events. Every number element carries data-field (its path in the snapshot JSON) and
// data-value (the exact number), so a test can compare the page with the JSON.
'use strict'
;(function () {
  const token = new URLSearchParams(location.search).get('token')
  const suffix = token ? `?token=${encodeURIComponent(token)}` : ''
  const number = new Intl.NumberFormat('fr-FR', { maximumFractionDigits: 3 })
  const percent = new Intl.NumberFormat('fr-FR', { style: 'percent', maximumFractionDigits: 1 })
  const time = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'short', timeStyle: 'medium' })
  const CHART_SERIES = 6
  let history = []
  let charts = null

  function el(tag, text, attrs) {
    const node = document.createElement(tag)
    if (text !== undefined && text !== null) node.textContent = String(text)
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value)
    return node
  }
  function num(field, value, format) {
    if (value === null || value === undefined) return el('span', '—', { 'data-field': field, 'data-value': 'null' })
    return el('span', (format || number).format(value), { 'data-field': field, 'data-value': String(value) })
  }
  function cell(content, className) {
    const td = el('td', undefined, className ? { class: className } : {})
    if (content instanceof Node) td.append(content)
    else td.textContent = content === null || content === undefined ? '—' : String(content)
    return td
  }
  function card(label, content) {
    const box = el('div', undefined, { class: 'card' })
    box.append(el('div', label, { class: 'label' }))
    const value = el('div', undefined, { class: 'value' })
    value.append(content)
    box.append(value)
    return box
  }
  function yesNo(field, value) {
    return el('span', value ? 'oui' : 'non', { 'data-field': field, 'data-value': String(value), class: value ? 'good' : 'bad' })
  }
  function fill(id, nodes) {
    const target = document.getElementById(id)
    target.replaceChildren(...nodes)
  }
  function rows(id, items, render) {
    document.querySelector(`#${id} tbody`).replaceChildren(...items.map((item, index) => {
      const tr = el('tr')
      tr.append(...render(item, index))
      return tr
    }))
  }
  function duration(seconds) {
    const h = Math.floor(seconds / 3600)
    const m = Math.floor((seconds % 3600) / 60)
    return h > 0 ? `${h} h ${m} min` : `${m} min`
  }

  function render(snapshot) {
    const traffic = Boolean(snapshot.traffic)
    document.getElementById('traffic-view').hidden = !traffic
    document.getElementById('tests-view').hidden = traffic
    if (traffic) renderTraffic(snapshot)
    else renderTests(snapshot)
    renderBackup(snapshot.backup)
    updateCharts(traffic ? trafficCharts(snapshot.traffic) : TEST_CHARTS)
  }

  // The app's real traffic (--source app|pg_stat_statements): the window since the previous collection.
  /** The page's header, the same for both views: engine, database, time of the collection. */
  function showHeader({ engine, database }, collectedAt) {
    document.getElementById('engine').textContent = engine
    document.getElementById('database').textContent = database
    document.getElementById('collected-at').textContent = time.format(new Date(collectedAt))
    document.getElementById('collected-at').setAttribute('data-collected-at', collectedAt)
  }

  function renderTraffic(snapshot) {
    const t = snapshot.traffic
    const totals = t.totals
    showHeader(t, snapshot.collectedAt)
    document.getElementById('traffic-source').textContent = t.source
    fill('traffic-notes', t.notes.map((note) => el('li', note)))
    fill('traffic-overview', [
      card('Opérations', num('traffic.totals.operations', totals.operations)),
      card('Lentes', num('traffic.totals.slowOperations', totals.slowOperations)),
      card('Échecs', num('traffic.totals.failedOperations', totals.failedOperations)),
      card('Requêtes SQL', num('traffic.totals.statements', totals.statements)),
      card('Temps base (ms)', num('traffic.totals.databaseMs', totals.databaseMs)),
      card('Taux de cache', num('traffic.totals.hitRate', totals.hitRate, percent)),
      card('Seuil lent (ms)', num('traffic.thresholds.slowMs', t.thresholds.slowMs)),
    ])
    rows('traffic-top', t.topDatabaseTime, (s, i) => [
      cell(el('code', s.id)), cell(el('code', s.display)),
      ...['calls', 'totalMs', 'meanMs', 'p95Ms'].map((key) => cell(num(`traffic.topDatabaseTime.${i}.${key}`, s[key]), 'num')),
    ])
    rows('traffic-statements', t.statements, (s, i) => [
      cell(el('code', s.id)), cell(s.kind === 'sql' ? 'SQL' : 'opération'), cell(el('code', s.display)),
      ...['calls', 'p50Ms', 'p95Ms', 'p99Ms', 'meanMs', 'maxMs', 'totalMs', 'failed'].map((key) => cell(num(`traffic.statements.${i}.${key}`, s[key]), 'num')),
    ])
    document.getElementById('traffic-tenants-missing').hidden = t.tenants !== null
    document.getElementById('traffic-tenants').hidden = t.tenants === null
    rows('traffic-tenants', t.tenants || [], (r, i) => [
      cell(el('code', r.tenantId)),
      ...['operations', 'operationMs', 'meanOperationMs', 'p95OperationMs', 'statements', 'databaseMs'].map((key) => cell(num(`traffic.tenants.${i}.${key}`, r[key]), 'num')),
    ])
  }

  function renderTests(snapshot) {
    const m = snapshot.metrics
    const g = m.globalMetrics
    showHeader(m, snapshot.collectedAt)
    fill('overview', [
      card('Opérations', num('metrics.globalMetrics.totalQueries', g.totalQueries)),
      card('p50 (ms)', num('metrics.globalMetrics.p50Duration', g.p50Duration)),
      card('p95 (ms)', num('metrics.globalMetrics.p95Duration', g.p95Duration)),
      card('p99 (ms)', num('metrics.globalMetrics.p99Duration', g.p99Duration)),
      card('Lentes', num('metrics.globalMetrics.slowQueriesCount', g.slowQueriesCount)),
      card('Échecs', num('metrics.globalMetrics.failedQueries', g.failedQueries)),
      card('Seuil lent (ms)', num('metrics.thresholds.slowMs', m.thresholds.slowMs)),
    ])
    fill('cache', [
      card('Taux de cache', num('metrics.cache.hitRate', m.cache.hitRate, percent)),
      card('Connexions actives', num('metrics.system.activeConnections', m.system.activeConnections)),
      card('Connexions ouvertes', num('metrics.system.openConnections', m.system.openConnections)),
      card('Taille du pool', num('metrics.system.poolSize', m.system.poolSize)),
    ])
    rows('fingerprints', m.fingerprints, (f, i) => [
      cell(el('code', f.id), ''), cell(el('code', f.display)),
      ...['count', 'p50Ms', 'p95Ms', 'p99Ms', 'maxMs', 'totalMs'].map((key) => cell(num(`metrics.fingerprints.${i}.${key}`, f[key]), 'num')),
    ])
    const plans = new Map()
    for (const r of m.recommendations) if (r.evidence && r.evidence.plan) for (const id of r.fingerprintIds) plans.set(id, r.evidence.plan.join('\n'))
    rows('slow-queries', g.slowQueries, (q, i) => [
      cell(time.format(new Date(q.timestamp))), cell(`${q.model ?? ''}.${q.action}`),
      cell(num(`metrics.globalMetrics.slowQueries.${i}.durationMs`, q.durationMs), 'num'),
      cell(num(`metrics.globalMetrics.slowQueries.${i}.dbDurationMs`, q.dbDurationMs), 'num'),
      cell(el('code', q.fingerprintId)), cell(el('code', q.sql)), cell(el('pre', plans.get(q.fingerprintId) ?? '—')),
    ])
    rows('tenants', m.tenantMetrics, (t, i) => [
      cell(el('code', t.tenantId)), cell(t.tenantName),
      ...['queryCount', 'averageDuration', 'totalDossiers', 'totalClients', 'storageUsed'].map((key) => cell(num(`metrics.tenantMetrics.${i}.${key}`, t[key]), 'num')),
    ])
    fill('recommendations', m.recommendations.length === 0 ? [el('li', 'Aucune recommandation.')] : m.recommendations.map((r) => {
      const li = el('li', r.message)
      if (r.evidence && r.evidence.plan) li.append(el('pre', r.evidence.plan.join('\n')))
      return li
    }))
  }

  function renderBackup(b) {
    if (b === null) {
      fill('backup', [el('p', 'Aucun dossier de sauvegarde suivi.')])
      fill('backup-problems', [])
      return
    }
    const n = b.newest
    fill('backup', n === null ? [card('Dernière sauvegarde', el('span', 'aucune', { class: 'bad' }))] : [
      card('Dernière sauvegarde', el('code', n.id, { 'data-field': 'backup.newest.id', 'data-value': n.id })),
      card('Âge', el('span', duration(n.ageSeconds), { 'data-field': 'backup.newest.ageSeconds', 'data-value': String(n.ageSeconds) })),
      card('Taille (octets)', num('backup.newest.sizeBytes', n.sizeBytes)),
      card('Vérifiée', yesNo('backup.newest.verified', n.verified)),
      card('Copie hors site', n.offsite ? el('span', n.offsite.target, { class: 'good', 'data-field': 'backup.newest.offsite.target', 'data-value': n.offsite.target }) : el('span', 'non', { class: 'bad', 'data-field': 'backup.newest.offsite', 'data-value': 'null' })),
      card('Dernier exercice de restauration', b.lastDrill ? drillLine(b.lastDrill) : el('span', 'jamais', { class: 'bad', 'data-field': 'backup.lastDrill', 'data-value': 'null' })),
      card('Dernière opération', b.lastRun ? el('span', `${b.lastRun.operation} ${b.lastRun.result === 'success' ? 'réussie' : 'échouée'}`, { class: b.lastRun.result === 'success' ? 'good' : 'bad' }) : el('span', '—')),
    ])
    fill('backup-problems', b.problems.map((p) => el('li', p, { class: 'bad' })))
  }

  function drillLine(drill) {
    const ok = drill.result === 'success'
    const line = el('span', `${time.format(new Date(drill.at))} — ${ok ? 'réussi' : 'échoué'}`, { class: ok ? 'good' : 'bad', 'data-field': 'backup.lastDrill.result', 'data-value': drill.result, 'data-at': drill.at })
    if (drill.error) line.setAttribute('title', drill.error)
    return line
  }

  function chartData(key) {
    const totals = new Map()
    for (const point of history) for (const [id, f] of Object.entries(point.fingerprints)) totals.set(id, Math.max(totals.get(id) || 0, f.count))
    const ids = [...totals].sort((a, b) => b[1] - a[1]).slice(0, CHART_SERIES).map(([id]) => id)
    const data = [history.map((p) => p.t), ...ids.map((id) => history.map((p) => (p.fingerprints[id] ? p.fingerprints[id][key] : null)))]
    return { ids, data }
  }
  const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b']
  function makeChart(target, title, key) {
    const { ids, data } = chartData(key)
    const series = [{ label: 'heure' }, ...ids.map((id, i) => ({ label: id, stroke: COLORS[i % COLORS.length], width: 2 }))]
    return { ids, plot: new uPlot({ title, width: 560, height: 240, series, scales: { x: { time: true } } }, data, target) }
  }
  // One chart per quantile and one of the calls, per fingerprint, over the collections kept.
  const TEST_CHARTS = [
    { id: 'chart-p50', title: 'p50 par empreinte (ms)', key: 'p50Ms' },
    { id: 'chart-p95', title: 'p95 par empreinte (ms)', key: 'p95Ms' },
    { id: 'chart-p99', title: 'p99 par empreinte (ms)', key: 'p99Ms' },
    { id: 'chart-calls', title: 'Appels par empreinte (fenêtre)', key: 'count' },
  ]
  // Real traffic: the quantiles where the source has them (the sink), the mean where it has only sums (pg_stat_statements).
  function trafficCharts(t) {
    const all = [
      { id: 'traffic-chart-p50', title: 'p50 par empreinte (ms)', key: 'p50Ms', percentile: true },
      { id: 'traffic-chart-p95', title: 'p95 par empreinte (ms)', key: 'p95Ms', percentile: true },
      { id: 'traffic-chart-p99', title: 'p99 par empreinte (ms)', key: 'p99Ms', percentile: true },
      { id: 'traffic-chart-mean', title: 'Moyenne par empreinte (ms)', key: 'meanMs', percentile: false },
      { id: 'traffic-chart-calls', title: 'Appels par empreinte (fenêtre)', key: 'count', percentile: false },
    ]
    for (const chart of all) document.getElementById(chart.id).hidden = chart.percentile && !t.measures.percentiles
    return all.filter((chart) => !chart.percentile || t.measures.percentiles)
  }
  function updateCharts(list) {
    if (typeof uPlot === 'undefined') return
    const ids = `${list.map((chart) => chart.id).join()}|${chartData('count').ids.join()}`
    if (charts === null || ids !== charts.ids) {
      if (charts !== null) for (const id of charts.targets) document.getElementById(id).replaceChildren()
      charts = { ids, targets: list.map((chart) => chart.id), plots: list.map((chart) => makeChart(document.getElementById(chart.id), chart.title, chart.key).plot) }
    } else {
      list.forEach((chart, i) => charts.plots[i].setData(chartData(chart.key).data))
    }
  }

  function addHistory(snapshot) {
    const t = Date.parse(snapshot.collectedAt) / 1000
    if (history.length > 0 && history[history.length - 1].t >= t) return
    const fingerprints = {}
    if (snapshot.traffic) for (const s of snapshot.traffic.statements) fingerprints[s.id] = { count: s.calls, p50Ms: s.p50Ms, p95Ms: s.p95Ms, p99Ms: s.p99Ms, meanMs: s.meanMs }
    else for (const f of snapshot.metrics.fingerprints) fingerprints[f.id] = { count: f.count, p50Ms: f.p50Ms, p95Ms: f.p95Ms, p99Ms: f.p99Ms, meanMs: f.meanMs }
    history.push({ t, fingerprints })
    if (history.length > 120) history.shift()
  }

  async function start() {
    const [snapshot, points] = await Promise.all([fetch(`/api/snapshot${suffix}`).then((r) => r.json()), fetch(`/api/history${suffix}`).then((r) => r.json())])
    history = points
    render(snapshot)
    const events = new EventSource(`/events${suffix}`)
    const status = document.getElementById('status')
    events.addEventListener('open', () => { status.textContent = 'en direct'; status.className = 'good' })
    events.addEventListener('error', () => { status.textContent = 'reconnexion…'; status.className = 'bad' })
    events.addEventListener('snapshot', (event) => {
      const next = JSON.parse(event.data)
      addHistory(next)
      render(next)
    })
  }
  start().catch(() => {
    const status = document.getElementById('status')
    status.textContent = 'données indisponibles'
    status.className = 'bad'
  })
})()
