/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * ngx_ai_gateway dashboard (docs/dashboard.md).
 *
 * Reads the management API of the gateway that serves it: the analytics
 * series (GET .../gateways/{id}/analytics) and the Logs API (list with
 * filters, one log, its payloads, PATCH feedback).  The API's base path,
 * account and gateway come from config.json (the ai_gateway_dashboard
 * directive) and may be changed in the form; the API token the user types
 * is kept in sessionStorage only and sent as "Authorization: Bearer", never
 * in a URL.  Every value from the API is written with textContent (or as an
 * SVG attribute that is a number), never as HTML.  The log list is read a
 * page at a time.
 */

'use strict';

(function () {

  var PER_PAGE = 20;
  var BARS = 60;
  var COLORS = ['#2f6fde', '#f38020', '#2e7d32', '#8e44ad', '#c62828',
                '#00838f', '#6d4c41', '#9e9d24'];
  var SVGNS = 'http://www.w3.org/2000/svg';

  var state = {
    api: '/client/v4', account: '', gateway: '',
    page: 1, totalPages: 1, selected: null, view: 'analytics'
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      e.setAttribute(k, String(attrs[k]));
    });
    return e;
  }

  function status(text, bad) {
    var s = $('status');
    s.textContent = text || '';
    s.className = bad ? 'status err' : 'status';
  }

  function num(v) {
    return (typeof v === 'number' && isFinite(v)) ? v : 0;
  }

  function fmtInt(v) { return num(v).toLocaleString('en-US'); }

  function fmtCost(v) {
    v = num(v);
    if (v === 0) { return '$0'; }
    return '$' + (v < 0.01 ? v.toPrecision(3) : v.toFixed(4));
  }

  function fmtTime(sec) {
    var d = new Date(sec * 1000);
    function p(n) { return (n < 10 ? '0' : '') + n; }
    return p(d.getHours()) + ':' + p(d.getMinutes());
  }

  /* the API: same origin, a path; the token in a header */

  function token() {
    try { return sessionStorage.getItem('aigw.token') || ''; }
    catch (e) { return ''; }
  }

  function base() {
    return state.api + '/accounts/' + encodeURIComponent(state.account)
           + '/ai-gateway/gateways/' + encodeURIComponent(state.gateway);
  }

  function call(method, path, body) {
    var headers = { 'accept': 'application/json' };
    var t = token();
    if (t) { headers.authorization = 'Bearer ' + t; }
    if (body !== undefined) { headers['content-type'] = 'application/json'; }

    return fetch(base() + path, {
      method: method, headers: headers, cache: 'no-store',
      credentials: 'same-origin', redirect: 'error',
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (text) {
        var j = null;
        try { j = JSON.parse(text); } catch (e) { j = null; }
        return { status: r.status, json: j, text: text };
      });
    });
  }

  function apiError(res) {
    var m = 'HTTP ' + res.status;
    if (res.json && res.json.errors && res.json.errors.length) {
      m += ': ' + String(res.json.errors[0].message);
    }
    return m;
  }

  /* the form: config.json's values, then the user's */

  function readForm() {
    var api = $('api').value.trim().replace(/\/+$/, '');
    if (!/^\/[A-Za-z0-9._~\/-]*$/.test(api) || api.indexOf('//') >= 0) {
      status('The API is a path on this server, e.g. /client/v4', true);
      return false;
    }
    state.api = api;
    state.account = $('account').value.trim();
    state.gateway = $('gateway').value.trim();
    var t = $('token').value;
    try {
      if (t) { sessionStorage.setItem('aigw.token', t); }
    } catch (e) { /* private mode: the token lives in the field only */ }
    if (!state.gateway) {
      status('Which gateway?', true);
      return false;
    }
    return true;
  }

  /* analytics */

  function loadAnalytics() {
    var range = parseInt($('range').value, 10);
    var end = Math.floor(Date.now() / 1000);
    var q = '?start=' + (end - range) + '&end=' + end
            + '&group_by=' + encodeURIComponent($('group-by').value);

    status('Loading analytics...');

    return call('GET', '/analytics' + q).then(function (res) {
      if (res.status !== 200 || !res.json || !res.json.success) {
        status('Analytics: ' + apiError(res), true);
        return;
      }
      renderAnalytics(res.json.result);
      status('Analytics loaded at ' + new Date().toLocaleTimeString());
    }, function (e) {
      status('Analytics: ' + e.message, true);
    });
  }

  function renderAnalytics(a) {
    var t = a.totals || {};
    var req = num(t.requests);

    $('k-requests').textContent = fmtInt(req);
    $('k-tokens').textContent = fmtInt(t.tokens_in) + ' / '
                                + fmtInt(t.tokens_out);
    $('k-cost').textContent = fmtCost(t.cost);
    $('k-errors').textContent = fmtInt(t.errors);
    $('k-cached').textContent = req
        ? (Math.round(num(t.cached) * 1000 / req) / 10) + '%' : '0%';
    $('overflow').hidden = !a.overflow;

    var groups = (a.groups || []).slice().sort(function (x, y) {
      return num(y.totals && y.totals.requests)
             - num(x.totals && x.totals.requests);
    });

    var byModel = a.group_by === 'model';

    function label(g) {
      return byModel ? String(g.provider) + ' / ' + String(g.model || '-')
                     : String(g.provider);
    }

    /* the time axis: at most BARS bars of whole buckets */

    var bucket = num(a.bucket) || 60;
    var n = Math.floor((num(a.end) - num(a.start)) / bucket) + 1;
    var per = Math.max(1, Math.ceil(n / BARS));
    var bars = Math.ceil(n / per);

    /* the biggest groups by name, the rest summed */

    var shown = groups.slice(0, COLORS.length - 1);
    var rest = groups.slice(COLORS.length - 1);

    function series(metric) {
      var rows = shown.map(function (g) {
        return { name: label(g), values: binned(g, metric) };
      });
      if (rest.length) {
        var v = new Array(bars).fill(0);
        rest.forEach(function (g) {
          binned(g, metric).forEach(function (x, i) { v[i] += x; });
        });
        rows.push({ name: 'others', values: v });
      }
      return rows;
    }

    function binned(g, metric) {
      var v = new Array(bars).fill(0);
      (g.series || []).forEach(function (p) {
        var i = Math.floor((num(p.time) - num(a.start)) / bucket / per);
        if (i >= 0 && i < bars) {
          v[i] += metric === 'tokens' ? num(p.tokens_in) + num(p.tokens_out)
                                      : num(p[metric]);
        }
      });
      return v;
    }

    var opts = { start: num(a.start), step: bucket * per, bars: bars };

    chart($('c-requests'), series('requests'), opts, fmtInt);
    chart($('c-tokens'), series('tokens'), opts, fmtInt);
    chart($('c-cost'), series('cost'), opts, fmtCost);
    chart($('c-errors'), series('errors'), opts, fmtInt);
    chart($('c-cached'), series('cached'), opts, fmtInt);

    /* the breakdown */

    var tbody = $('breakdown').tBodies[0];
    tbody.textContent = '';

    groups.forEach(function (g) {
      var tt = g.totals || {};
      var tr = el('tr');
      tr.appendChild(el('td', g.provider));
      tr.appendChild(el('td', byModel ? (g.model || '-') : 'all', 'model'));
      tr.appendChild(el('td', fmtInt(tt.requests), 'n'));
      tr.appendChild(el('td', fmtInt(tt.tokens_in), 'n'));
      tr.appendChild(el('td', fmtInt(tt.tokens_out), 'n'));
      tr.appendChild(el('td', fmtCost(tt.cost), 'n'));
      tr.appendChild(el('td', fmtInt(tt.errors), 'n'));
      tr.appendChild(el('td', fmtInt(tt.cached), 'n'));
      tbody.appendChild(tr);
    });

    if (!groups.length) {
      var tr = el('tr');
      var td = el('td', 'No requests in this range.');
      td.colSpan = 8;
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
  }

  /* a stacked bar chart in SVG, drawn here */

  function chart(box, rows, o, fmt) {
    var W = 600, H = 160, L = 8, R = 8, T = 14, B = 18;
    var i, max = 0;

    for (i = 0; i < o.bars; i++) {
      var s = 0;
      rows.forEach(function (r) { s += r.values[i]; });
      if (s > max) { max = s; }
    }

    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    var ph = H - T - B;
    var bw = (W - L - R) / o.bars;

    root.appendChild(svg('line', { x1: L, y1: T, x2: W - R, y2: T,
                                   'class': 'gridline' }));
    root.appendChild(svg('line', { x1: L, y1: T + ph, x2: W - R, y2: T + ph,
                                   'class': 'gridline' }));

    var top = svg('text', { x: L, y: T - 3, 'class': 'axis' });
    top.textContent = 'max ' + fmt(max);
    root.appendChild(top);

    var t0 = svg('text', { x: L, y: H - 4, 'class': 'axis' });
    t0.textContent = fmtTime(o.start);
    root.appendChild(t0);

    var t1 = svg('text', { x: W - R, y: H - 4, 'class': 'axis',
                           'text-anchor': 'end' });
    t1.textContent = fmtTime(o.start + o.step * (o.bars - 1));
    root.appendChild(t1);

    if (max > 0) {
      for (i = 0; i < o.bars; i++) {
        var y = T + ph;
        rows.forEach(function (r, k) {
          var v = r.values[i];
          if (!v) { return; }
          var h = Math.max(1, v / max * ph);
          y -= h;
          var rect = svg('rect', {
            x: (L + i * bw + bw * 0.1).toFixed(2), y: y.toFixed(2),
            width: Math.max(1, bw * 0.8).toFixed(2), height: h.toFixed(2),
            fill: COLORS[k % COLORS.length]
          });
          var title = svg('title');
          title.textContent = r.name + ' ' + fmtTime(o.start + o.step * i)
                              + ': ' + fmt(v);
          rect.appendChild(title);
          root.appendChild(rect);
        });
      }
    }

    box.textContent = '';
    box.appendChild(root);

    var legend = el('div', null, 'legend');
    rows.forEach(function (r, k) {
      var item = el('span');
      var sw = el('span', null, 'sw');
      sw.style.background = COLORS[k % COLORS.length];
      item.appendChild(sw);
      item.appendChild(document.createTextNode(r.name));
      legend.appendChild(item);
    });
    box.appendChild(legend);
  }

  /* logs */

  function filters() {
    var f = [];
    var p = $('f-provider').value.trim();
    var m = $('f-model').value.trim();
    var s = $('f-success').value;
    var c = $('f-cached').value;
    if (p) { f.push({ key: 'provider', operator: 'contains', value: [p] }); }
    if (m) { f.push({ key: 'model', operator: 'contains', value: [m] }); }
    if (s) { f.push({ key: 'success', operator: 'eq', value: [s === 'true'] }); }
    if (c) { f.push({ key: 'cached', operator: 'eq', value: [c === 'true'] }); }
    return f;
  }

  function loadLogs() {
    var q = '?page=' + state.page + '&per_page=' + PER_PAGE
            + '&order_by=created_at&order_by_direction=desc';
    var f = filters();
    var s = $('f-search').value.trim();
    if (f.length) { q += '&filters=' + encodeURIComponent(JSON.stringify(f)); }
    if (s) { q += '&search=' + encodeURIComponent(s); }

    status('Loading logs...');

    return call('GET', '/logs' + q).then(function (res) {
      if (res.status !== 200 || !res.json || !res.json.success) {
        status('Logs: ' + apiError(res), true);
        return;
      }
      renderLogs(res.json.result || [], res.json.result_info || {});
      status('Logs loaded at ' + new Date().toLocaleTimeString());
    }, function (e) {
      status('Logs: ' + e.message, true);
    });
  }

  function feedbackText(v) {
    return v === 1 ? 'up' : v === -1 ? 'down' : '-';
  }

  function renderLogs(list, info) {
    var tbody = $('logs').tBodies[0];
    tbody.textContent = '';

    list.forEach(function (log) {
      var tr = el('tr');
      tr.dataset.id = String(log.id);
      var when = log.created_at ? new Date(log.created_at) : null;
      tr.appendChild(el('td', when && !isNaN(when)
                              ? when.toLocaleString() : '-'));
      tr.appendChild(el('td', log.provider || '-', 'provider'));
      tr.appendChild(el('td', log.model || '-', 'model'));
      tr.appendChild(el('td', log.status_code === undefined ? '-'
                              : log.status_code,
                        log.success ? 'ok' : 'bad'));
      tr.appendChild(el('td', (log.tokens_in === null ? '-' : num(log.tokens_in))
                              + ' / '
                              + (log.tokens_out === null ? '-'
                                 : num(log.tokens_out)), 'n'));
      tr.appendChild(el('td', log.cost === null || log.cost === undefined
                              ? '-' : fmtCost(log.cost), 'n'));
      tr.appendChild(el('td', num(log.duration) + ' ms', 'n'));
      tr.appendChild(el('td', log.cached ? 'yes' : 'no'));
      tr.appendChild(el('td', feedbackText(log.feedback), 'feedback'));
      if (state.selected === tr.dataset.id) { tr.className = 'sel'; }
      tr.addEventListener('click', function () { openLog(tr.dataset.id); });
      tbody.appendChild(tr);
    });

    if (!list.length) {
      var tr = el('tr');
      var td = el('td', 'No logs match.');
      td.colSpan = 9;
      tr.appendChild(td);
      tbody.appendChild(tr);
    }

    state.totalPages = Math.max(1, num(info.total_pages));
    $('page-info').textContent = 'Page ' + state.page + ' of '
                                 + state.totalPages + ' ('
                                 + fmtInt(info.total_count) + ' logs)';
    $('prev').disabled = state.page <= 1;
    $('next').disabled = state.page >= state.totalPages;
  }

  function idPath(id) { return '/logs/' + encodeURIComponent(id); }

  function openLog(id) {
    state.selected = id;
    Array.prototype.forEach.call($('logs').tBodies[0].rows, function (tr) {
      tr.className = tr.dataset.id === id ? 'sel' : '';
    });

    $('detail').hidden = false;
    $('d-id').textContent = id;
    $('d-fields').textContent = '';
    $('d-request').textContent = 'Loading...';
    $('d-response').textContent = 'Loading...';

    call('GET', idPath(id)).then(function (res) {
      if (res.status !== 200 || !res.json || !res.json.success) {
        status('Log: ' + apiError(res), true);
        return;
      }
      renderLog(res.json.result);
    });

    payload(id, 'request', $('d-request'));
    payload(id, 'response', $('d-response'));
  }

  function renderLog(log) {
    var dl = $('d-fields');
    dl.textContent = '';
    Object.keys(log).forEach(function (k) {
      var v = log[k];
      dl.appendChild(el('dt', k));
      dl.appendChild(el('dd', v !== null && typeof v === 'object'
                              ? JSON.stringify(v) : String(v)));
    });
    showFeedback(log.feedback);
  }

  function showFeedback(v) {
    $('d-feedback').textContent = v === 1 ? 'Thumbs up'
                                  : v === -1 ? 'Thumbs down' : 'No feedback';
    $('fb-up').className = v === 1 ? 'on' : '';
    $('fb-down').className = v === -1 ? 'on' : '';
    var tr = $('logs').querySelector('tr.sel td.feedback');
    if (tr) { tr.textContent = feedbackText(v); }
  }

  function payload(id, which, pre) {
    call('GET', idPath(id) + '/' + which).then(function (res) {
      if (res.status !== 200) {
        pre.textContent = '(' + (res.status === 404 ? 'not kept'
                                 : apiError(res)) + ')';
        return;
      }
      var text = res.text;
      try { text = JSON.stringify(JSON.parse(text), null, 2); }
      catch (e) { /* not JSON: as it is */ }
      pre.textContent = text;
    });
  }

  function feedback(v) {
    var id = state.selected;
    if (!id) { return; }
    status('Saving feedback...');
    call('PATCH', idPath(id), { feedback: v }).then(function (res) {
      if (res.status !== 200) {
        status('Feedback: ' + apiError(res), true);
        return;
      }
      /* what the store has now */
      return call('GET', idPath(id)).then(function (r) {
        if (r.status === 200 && r.json && r.json.success) {
          renderLog(r.json.result);
          status('Feedback saved');
        }
      });
    });
  }

  /* views */

  function show(view) {
    state.view = view;
    ['analytics', 'logs'].forEach(function (v) {
      $('view-' + v).hidden = v !== view;
      $('tab-' + v).className = v === view ? 'tab on' : 'tab';
      $('tab-' + v).setAttribute('aria-selected', v === view ? 'true'
                                                             : 'false');
    });
    return view === 'logs' ? loadLogs() : loadAnalytics();
  }

  function start() {
    $('conn').addEventListener('submit', function (e) {
      e.preventDefault();
      if (readForm()) { show(state.view); }
    });
    $('tab-analytics').addEventListener('click', function () {
      if (readForm()) { show('analytics'); }
    });
    $('tab-logs').addEventListener('click', function () {
      if (readForm()) { show('logs'); }
    });
    $('refresh').addEventListener('click', loadAnalytics);
    $('range').addEventListener('change', loadAnalytics);
    $('group-by').addEventListener('change', loadAnalytics);
    $('filters').addEventListener('submit', function (e) {
      e.preventDefault();
      state.page = 1;
      loadLogs();
    });
    $('prev').addEventListener('click', function () {
      if (state.page > 1) { state.page--; loadLogs(); }
    });
    $('next').addEventListener('click', function () {
      if (state.page < state.totalPages) { state.page++; loadLogs(); }
    });
    $('fb-up').addEventListener('click', function () { feedback(1); });
    $('fb-down').addEventListener('click', function () { feedback(-1); });
    $('d-close').addEventListener('click', function () {
      $('detail').hidden = true;
      state.selected = null;
    });

    if (token()) { $('token').placeholder = 'token kept for this tab'; }

    fetch('config.json', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { return r.json(); })
      .then(function (c) {
        if (c && typeof c === 'object') {
          if (typeof c.api === 'string') { state.api = c.api; }
          if (typeof c.account === 'string') { state.account = c.account; }
          if (typeof c.gateway === 'string') { state.gateway = c.gateway; }
        }
      }, function () { /* the defaults */ })
      .then(function () {
        $('api').value = state.api;
        $('account').value = state.account;
        $('gateway').value = state.gateway;
        document.body.dataset.ready = '1';
        if (state.gateway && token()) {
          /* a token typed before in this tab */
          show('analytics');
        }
      });
  }

  document.addEventListener('DOMContentLoaded', start);
})();
