/**
 * The page's HTML shell, with two views: the six tests' analysis (`#tests-view`) or the app's real
 * traffic (`#traffic-view`), whichever the snapshot holds. Everything it shows is filled in by `dashboard-page.js` from
 * /api/snapshot, /api/history and /events (with `textContent`, never as HTML), so the page and the
 * JSON cannot disagree. Assets are local (uPlot from node_modules), so it works offline.
 */

/** @example renderPage({ token: undefined }) // '<!doctype html>…' */
export function renderPage(options: { token: string | undefined }): string {
  // The token only travels back to the browser that just presented it, for the asset URLs.
  const suffix = options.token === undefined ? '' : `?token=${encodeURIComponent(options.token)}`
  return `<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>IA Poste Manager — tableau de bord de la base</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uPlot.min.css${suffix}">
<style>
  body { font-family: system-ui, sans-serif; margin: 1rem 2rem; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; } h2 { font-size: 1.1rem; margin-top: 1.6rem; }
  .meta { color: #5a6275; font-size: .9rem; }
  .cards { display: flex; flex-wrap: wrap; gap: .8rem; }
  .card { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: .6rem .9rem; min-width: 9rem; }
  .card .label { font-size: .8rem; color: #5a6275; } .card .value { font-size: 1.3rem; font-weight: 600; }
  table { border-collapse: collapse; background: #fff; width: 100%; font-size: .85rem; }
  th, td { border: 1px solid #dde1e8; padding: .3rem .5rem; text-align: left; vertical-align: top; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  code, pre { font-family: ui-monospace, monospace; font-size: .8rem; white-space: pre-wrap; margin: 0; }
  .charts { display: flex; flex-wrap: wrap; gap: 1rem; } .chart { background: #fff; border: 1px solid #dde1e8; padding: .4rem; }
  .bad { color: #b3261e; font-weight: 600; } .good { color: #1e7a34; font-weight: 600; }
  #status { font-size: .85rem; }
</style>
</head>
<body>
<h1>IA Poste Manager — tableau de bord de la base</h1>
<p class="meta"><span id="engine"></span> · <span id="database"></span> · mise à jour <span id="collected-at"></span> · <span id="status">connexion…</span></p>

<div id="traffic-view" hidden>
<h2>Trafic réel de l'application (<span id="traffic-source"></span>, fenêtre depuis la collecte précédente)</h2>
<ul id="traffic-notes"></ul>
<div class="cards" id="traffic-overview"></div>

<h2>Évolution par empreinte</h2>
<div class="charts" id="traffic-charts"><div class="chart" id="traffic-chart-p50"></div><div class="chart" id="traffic-chart-p95"></div><div class="chart" id="traffic-chart-p99"></div><div class="chart" id="traffic-chart-mean"></div><div class="chart" id="traffic-chart-calls"></div></div>

<h2>Requêtes les plus coûteuses en temps base</h2>
<table id="traffic-top"><thead><tr><th>Empreinte</th><th>Requête (valeurs remplacées par ?)</th><th>Appels</th><th>Temps total (ms)</th><th>Moyenne (ms)</th><th>p95 (ms)</th></tr></thead><tbody></tbody></table>

<h2>Empreintes de la fenêtre</h2>
<table id="traffic-statements"><thead><tr><th>Empreinte</th><th>Type</th><th>Requête ou opération (valeurs remplacées par ?)</th><th>Appels</th><th>p50 (ms)</th><th>p95 (ms)</th><th>p99 (ms)</th><th>Moyenne (ms)</th><th>Max (ms)</th><th>Total (ms)</th><th>Échecs</th></tr></thead><tbody></tbody></table>

<h2>Cabinets</h2>
<p id="traffic-tenants-missing" hidden>Cette source ne sait pas à quel cabinet appartient une requête : installez le collecteur de l'app et lancez --source app.</p>
<table id="traffic-tenants"><thead><tr><th>Identifiant</th><th>Opérations</th><th>Temps des opérations (ms)</th><th>Moyenne (ms)</th><th>p95 (ms)</th><th>Requêtes SQL</th><th>Temps base (ms)</th></tr></thead><tbody></tbody></table>
</div>

<div id="tests-view">
<h2>Vue d'ensemble</h2>
<div class="cards" id="overview"></div>

<h2>Cache et connexions</h2>
<div class="cards" id="cache"></div>

<h2>Évolution par empreinte</h2>
<div class="charts"><div class="chart" id="chart-p50"></div><div class="chart" id="chart-p95"></div><div class="chart" id="chart-p99"></div><div class="chart" id="chart-calls"></div></div>

<h2>Empreintes de requêtes</h2>
<table id="fingerprints"><thead><tr><th>Empreinte</th><th>Requête (valeurs remplacées par ?)</th><th>Appels</th><th>p50 (ms)</th><th>p95 (ms)</th><th>p99 (ms)</th><th>Max (ms)</th><th>Total (ms)</th></tr></thead><tbody></tbody></table>

<h2>Requêtes lentes</h2>
<table id="slow-queries"><thead><tr><th>Heure</th><th>Opération</th><th>Durée (ms)</th><th>Temps base (ms)</th><th>Empreinte</th><th>Requête</th><th>Plan</th></tr></thead><tbody></tbody></table>

<h2>Cabinets</h2>
<table id="tenants"><thead><tr><th>Identifiant</th><th>Nom</th><th>Opérations</th><th>Durée moyenne (ms)</th><th>Dossiers</th><th>Clients</th><th>Stockage (octets)</th></tr></thead><tbody></tbody></table>

<h2>Recommandations</h2>
<ul id="recommendations"></ul>
</div>

<h2>Sauvegardes</h2>
<div class="cards" id="backup"></div>
<ul id="backup-problems"></ul>

<script src="/assets/uPlot.iife.min.js${suffix}"></script>
<script src="/assets/dashboard.js${suffix}"></script>
</body>
</html>
`
}
