"""`relais report`: one self-contained HTML file with the analytics KPIs and four charts.

Everything is inline (CSS, data, a small script drawing SVG), so the file opens offline and can be mailed
or printed. Tables and text are rendered here; the charts are drawn in the browser from the JSON in
`<script type="application/json" id="report-data">`. Each drawn `<figure class="chart">` gets
`data-rendered="true"`, `data-marks="N"` (points for the line charts, one bar per irritant, the
staffing curve's points) and `data-overflow="N"` (texts reaching past the chart's sides: long verbatims and
labels wrap, so 0), which is what the headless-browser test checks. The alerts are the ones analytics
raised (ListAlerts), never judged here.

Hostile text (customer verbatims, alert details) can never run: HTML is escaped, the JSON has `<` `>` `&`
escaped so a "</script>" cannot close the data element, the script only uses textContent, and a
Content-Security-Policy allows no network and only the report's own script (by hash, so no inline handlers).
"""

import base64
import hashlib
import html
import json
import math
from pathlib import Path

NO_DATA = '<p class="empty">no data yet</p>'

# (key, label, format) in display order; a row shows when either side has the key.
KPIS = (
    ("contacts", "Contacts", "int"),
    ("containment", "Containment", "pct"),
    ("false_containment", "False containment", "pct"),
    ("fcr", "First-contact resolution", "pct"),
    ("csat", "CSAT", "pct"),
    ("nps", "NPS", "signed"),
    ("aht_seconds", "Average handling time", "sec"),
    ("asa_seconds", "Average speed of answer", "sec"),
    ("service_level", "Service level", "pct"),
    ("abandonment", "Abandonment", "pct"),
    ("occupancy", "Occupancy", "pct"),
    ("contacts_per_agent_hour", "Contacts per agent hour", "dec"),
    ("cost_per_contact", "Cost per contact", "money"),
)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;background:#fff;max-width:980px;margin:24px auto;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta,.empty,figcaption{color:#666}.empty{font-style:italic}
table{border-collapse:collapse}th,td{padding:4px 12px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{border-bottom:2px solid #ccc}
figure{margin:8px 0;break-inside:avoid}svg{width:100%;height:auto;display:block}
svg text{font-size:11px;fill:#444}svg .grid{stroke:#eee}svg .axis{stroke:#999}svg .verbatim{fill:#777;font-style:italic}
ul.alerts li{margin:4px 0}.kind{font-weight:600;color:#a33}
@media print{body{max-width:none;margin:0}h2{break-after:avoid}}
"""

# Client-side charts: plain DOM + SVG, no library. Each chart is drawn in its own try/catch so one bad
# chart leaves only its own figure without data-rendered.
JS = r"""(function () {
const D = JSON.parse(document.getElementById('report-data').textContent || '{}');
const NS = 'http://www.w3.org/2000/svg', BOT = '#2b6cb0', HUMAN = '#dd6b20', SL = '#2f855a';
const num = v => (typeof v === 'number' && isFinite(v)) ? v : null;
const obj = v => (v && typeof v === 'object' && !Array.isArray(v)) ? v : {};
const arr = v => Array.isArray(v) ? v.filter(x => x && typeof x === 'object') : [];
const pct = v => Math.round(v * 100) + ' %';
const cut = (s, n) => { s = String(s); return s.length > n ? s.slice(0, n - 1) + '…' : s; };
function add(parent, tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;  // never innerHTML: verbatims are untrusted
  parent.appendChild(e);
  return e;
}
// Text wrapped to `width` user units (measured when the svg is in the page, else ~6 units a character),
// at most `maxLines` lines, the last one ending with "…" when cut. Returns [text element, lines drawn].
function wrap(svg, x, y, text, width, lineHeight, attrs, maxLines) {
  const t = add(svg, 'text', Object.assign({x: x, y: y}, attrs));
  const words = [], chunk = Math.max(8, Math.floor(width / 7));  // a word longer than a line is cut in pieces
  String(text).split(/\s+/).filter(Boolean).forEach(w => { while (w.length > chunk) { words.push(w.slice(0, chunk)); w = w.slice(chunk); } words.push(w); });
  const lines = [];
  let span = null;
  const fits = s => { span.textContent = s; const m = span.getComputedTextLength(); return (m > 0 ? m : s.length * 6) <= width; };
  let line = '';
  for (let i = 0; i < words.length; i++) {
    if (!span) span = add(t, 'tspan', {x: x, dy: lines.length ? lineHeight : 0});
    const candidate = line ? line + ' ' + words[i] : words[i];
    if (!line || fits(candidate)) { line = candidate; span.textContent = line; continue; }
    span.textContent = line;
    lines.push(span);
    if (lines.length === maxLines) {  // no room left: end the last line with an ellipsis that fits
      let kept = line.split(' ');
      while (kept.length > 1 && !fits(kept.join(' ') + ' …')) kept.pop();
      span.textContent = kept.join(' ') + ' …';
      return [t, lines.length];
    }
    span = null; line = ''; i--;
  }
  if (span) lines.push(span);
  return [t, Math.max(1, lines.length)];
}
function nice(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}
function finish(id, svg, marks) {
  const fig = document.getElementById(id);
  fig.insertBefore(svg, fig.firstChild);
  fig.setAttribute('data-rendered', 'true');
  fig.setAttribute('data-marks', String(marks));
  // Texts reaching past the chart's sides (rotated axis titles aside): 0 unless a text escaped the wrapping.
  const width = svg.viewBox.baseVal.width;
  const out = Array.from(svg.querySelectorAll('text')).filter(t => {
    if (t.hasAttribute('transform') || !t.textContent) return false;
    const box = t.getBBox();
    return box.x < -0.5 || box.x + box.width > width + 0.5;
  });
  fig.setAttribute('data-overflow', String(out.length));
}
// Line chart on a numeric x axis; o.lines[k].ys[i] may be null (gap). Returns [svg, x, y, marks].
function lines(o) {
  const W = 640, H = 300, L = 56, R = 20, T = 34, B = 46;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`); svg.setAttribute('role', 'img');
  const span = o.xMax - o.xMin;
  const x = v => L + (span ? (v - o.xMin) / span : 0.5) * (W - L - R);
  const y = v => H - B - Math.max(0, Math.min(v, o.yMax)) / o.yMax * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = o.yMax * i / 4;
    add(svg, 'line', {x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid'});
    add(svg, 'text', {x: L - 6, y: y(v) + 4, 'text-anchor': 'end'}, o.yFmt(v));
  }
  add(svg, 'line', {x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis'});
  add(svg, 'line', {x1: L, x2: L, y1: T, y2: H - B, class: 'axis'});
  const step = Math.max(1, Math.ceil(o.xs.length / 8));  // at most ~8 tick labels
  o.xs.forEach((v, i) => { if (i % step === 0) add(svg, 'text', {x: x(v), y: H - B + 16, 'text-anchor': 'middle'}, o.xTick(v, i)); });
  add(svg, 'text', {x: (L + W - R) / 2, y: H - 6, 'text-anchor': 'middle'}, o.xTitle);
  add(svg, 'text', {x: 14, y: (T + H - B) / 2, 'text-anchor': 'middle', transform: `rotate(-90 14 ${(T + H - B) / 2})`}, o.yTitle);
  let marks = 0;
  o.lines.forEach((ln, k) => {
    let d = '';
    o.xs.forEach((xv, i) => { const v = ln.ys[i]; d += v === null ? '' : `${d && ln.ys[i - 1] !== null ? 'L' : 'M'}${x(xv)} ${y(v)}`; });
    if (d) add(svg, 'path', {d: d, fill: 'none', stroke: ln.color, 'stroke-width': 2});
    o.xs.forEach((xv, i) => {
      const v = ln.ys[i];
      if (v === null) return;
      const c = add(svg, 'circle', {cx: x(xv), cy: y(v), r: 3.5, fill: ln.color});
      add(c, 'title', {}, `${ln.name}: ${o.yFmt(v)} (${o.xTick(xv, i)})`);
      marks++;
    });
    add(svg, 'rect', {x: L + 10 + k * 170, y: 10, width: 12, height: 12, fill: ln.color});  // legend
    add(svg, 'text', {x: L + 27 + k * 170, y: 20}, ln.name);
  });
  return [svg, x, y, marks];
}
function timeline(id, pick, yMax, yFmt, yTitle) {
  const s = arr(D.series);
  const tick = (v, i) => { const w = String(s[i].window_start || ''); return D.window === 'day' ? w.slice(5, 10) : w.slice(5, 16).replace('T', ' '); };
  const o = {xs: s.map((_, i) => i), xMin: 0, xMax: s.length - 1, xTick: tick, xTitle: 'window start', yTitle: yTitle, yFmt: yFmt,
             lines: pick.map(([name, color, f]) => ({name: name, color: color, ys: s.map(p => num(f(p)))}))};
  o.yMax = yMax || nice(Math.max(0, ...o.lines.flatMap(l => l.ys.filter(v => v !== null))));
  const r = lines(o);
  finish(id, r[0], r[3]);
}
const charts = {
  'chart-contacts': () => timeline('chart-contacts', [['bot contacts', BOT, p => obj(p.bot).contacts], ['human contacts', HUMAN, p => obj(p.human).contacts]],
                                   0, v => String(Math.round(v)), 'contacts'),
  'chart-containment': () => timeline('chart-containment', [['bot containment', BOT, p => obj(p.bot).containment], ['bot CSAT', HUMAN, p => obj(p.bot).csat]],
                                      1, pct, 'share of bot contacts'),
  'chart-irritants': () => {
    const items = arr(D.irritants), W = 640, LW = 180, BW = W - LW - 120;
    const max = Math.max(1, ...items.map(it => num(it.size) || 0));
    const svg = document.createElementNS(NS, 'svg');
    document.getElementById('chart-irritants').appendChild(svg);  // attached first: wrapping measures text
    let top = 6, marks = 0;
    items.forEach(it => {
      const size = num(it.size) || 0, prev = num(it.previous_size);
      const examples = (Array.isArray(it.examples) ? it.examples : []).map(String).filter(ex => ex.trim());
      let t = num(it.trend);
      if (t === null && prev) t = (size - prev) / prev;
      const trend = t === null ? (prev === 0 && size ? 'new' : '') : `${t >= 0 ? '+' : '–'}${Math.round(Math.abs(t) * 100)} %`;
      // Analytics always labels a topic; an old or hand-made file may not: its first verbatim, never "?".
      const name = String(it.label || '').trim() || (examples.length ? cut(examples[0].trim(), 48) : 'unlabelled topic');
      const label = wrap(svg, LW - 8, top + 13, name, LW - 16, 13, {'text-anchor': 'end'}, 2);
      add(label[0], 'title', {}, name);
      const w = Math.max(2, size / max * BW);
      add(svg, 'rect', {x: LW, y: top + 2, width: w, height: 15, fill: t > 0 ? '#c53030' : t < 0 ? '#2f855a' : '#718096'});
      marks++;
      add(svg, 'text', {x: LW + w + 6, y: top + 14}, `${size}${trend ? ' (' + trend + ')' : ''}`);
      top += Math.max(22, 13 * label[1] + 9);
      examples.slice(0, 3).forEach(ex => {
        top += 15 * wrap(svg, LW, top + 10, '“' + cut(ex.trim(), 400) + '”', W - LW - 8, 14, {class: 'verbatim'}, 5)[1];
      });
      top += 8;
    });
    svg.setAttribute('viewBox', `0 0 ${W} ${top}`); svg.setAttribute('role', 'img');
    finish('chart-irritants', svg, marks);
  },
  'chart-staffing': () => {
    const st = obj(D.staffing), rec = obj(st.recommended), target = num(st.target_level);
    const pts = arr(st.curve).filter(p => num(p.agents) !== null && num(p.service_level) !== null).sort((a, b) => a.agents - b.agents);
    const xs = pts.map(p => p.agents);
    const r = lines({xs: xs, xMin: xs[0], xMax: xs[xs.length - 1], xTick: v => String(v), xTitle: 'agents', yTitle: 'service level',
                     yMax: 1, yFmt: pct, lines: [{name: 'service level', color: SL, ys: pts.map(p => p.service_level)}]});
    const [svg, x, y] = r;
    if (target !== null) {
      add(svg, 'line', {x1: x(xs[0]), x2: x(xs[xs.length - 1]), y1: y(target), y2: y(target), stroke: '#c53030', 'stroke-dasharray': '5 4'});
      add(svg, 'text', {x: x(xs[xs.length - 1]), y: y(target) - 5, 'text-anchor': 'end', fill: '#c53030'}, `target ${pct(target)}`);
    }
    const a = num(rec.agents);
    if (a !== null && a >= xs[0] && a <= xs[xs.length - 1]) {  // recommended marker, not counted as a mark
      const at = pts.find(p => p.agents === a), sl = at ? at.service_level : num(rec.service_level);
      add(svg, 'line', {x1: x(a), x2: x(a), y1: y(0), y2: y(1), stroke: '#2b6cb0', 'stroke-dasharray': '2 3'});
      if (sl !== null) add(svg, 'path', {d: `M${x(a)} ${y(sl) - 8}l7 8l-7 8l-7 -8z`, fill: '#2b6cb0'});
      add(svg, 'text', {x: x(a) + 6, y: y(0.08), fill: '#2b6cb0'}, `recommended: ${a}`);
    }
    finish('chart-staffing', svg, r[3]);
  },
};
for (const id in charts) {
  if (!document.getElementById(id)) continue;  // no figure: the section has no data
  try { charts[id](); } catch (e) { console.error(id, e); }
}
})();"""


def render_report(data: dict) -> str:
    """The whole HTML document for the analytics `data` (every key optional, values may be None)."""
    d = _clean(data) if isinstance(data, dict) else {}
    e = html.escape
    title = str(d.get("title") or "relais — contact-center report")
    meta = " · ".join(f"{k.replace('_', ' ')}: {e(str(d[k]))}" for k in ("generated_at", "window") if d.get(k))
    payload = json.dumps(d, ensure_ascii=False, sort_keys=True)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        payload = payload.replace(ch, esc)  # "</script>" or "<!--" in a verbatim cannot end the data element
    script_hash = base64.b64encode(hashlib.sha256(JS.encode()).digest()).decode()
    csp = f"default-src 'none'; script-src 'sha256-{script_hash}'; style-src 'unsafe-inline'; img-src data:"
    series = _list(d.get("series"))
    staffing = _dict(d.get("staffing"))
    sections = [
        ("Key figures: bot vs human", _kpis(d)),
        ("Contacts over time", _figure("chart-contacts", _any(series, ("bot", "contacts"), ("human", "contacts")))),
        (
            "Containment vs bot CSAT",
            _figure(
                "chart-containment",
                _any(series, ("bot", "containment"), ("bot", "csat")),
                "Containment rising while CSAT falls is the sign of over-automation.",
            ),
        ),
        (
            "Top irritants",
            _figure(
                "chart-irritants",
                bool(_list(d.get("irritants"))),
                "Bar: contacts (conversations) in the window; in brackets: change against the previous"
                " window. Queue commands (STOP, CALLBACK…) and requests for a person are left out.",
            ),
        ),
        (
            "Staffing (Erlang C)",
            _figure(
                "chart-staffing",
                any(
                    _num(p.get("agents")) is not None and _num(p.get("service_level")) is not None
                    for p in _list(staffing.get("curve"))
                ),
                _staffing_caption(staffing),
                keep=True,
            ),
        ),
        ("Alerts", _alerts(d.get("alerts"), d.get("alert_window"))),
    ]
    if "agents" in d:  # GetKpis' agent dimension, when the data has it
        sections.insert(1, ("Agents: handling and use of the suggestions", _agents(d.get("agents"))))
    body = "\n".join(f"<section><h2>{e(h)}</h2>\n{content}</section>" for h, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<style>{CSS}</style></head>
<body>
<h1>{e(title)}</h1>
<p class="meta">{meta}</p>
{body}
<script type="application/json" id="report-data">{payload}</script>
<script>{JS}</script>
</body></html>
"""


def write_report(data: dict, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(data), encoding="utf-8")
    return path


def _clean(v):
    # JSON-safe copy: NaN/inf would make JSON.parse throw, unknown objects (datetimes...) become text
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v if v is None or isinstance(v, (str, int, float)) else str(v)


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v) -> list:
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _any(series, *paths) -> bool:
    return any(_num(_dict(p.get(side)).get(key)) is not None for p in series for side, key in paths)


def _fmt(v, kind: str) -> str:
    v = _num(v)
    if v is None:
        return "—"
    trim = lambda s: s[:-2] if s.endswith(".0") else s  # noqa: E731
    if kind == "pct":
        return trim(f"{v * 100:.1f}") + " %"
    if kind == "sec":
        return trim(f"{v:.1f}") + " s" + (f" ({int(v // 60)} min {int(v % 60):02d})" if v >= 60 else "")
    if kind == "int":
        return f"{round(v):,}".replace(",", "\u202f")
    if kind == "signed":
        return f"{v:+.0f}"
    if kind == "money":  # currency-neutral: the amount only
        return f"{v:,.2f}".replace(",", "\u202f")
    return trim(f"{v:.1f}")


def _kpis(d: dict) -> str:
    totals = _dict(d.get("totals"))
    bot, human, saving = (_dict(totals.get(k)) for k in ("bot", "human", "saving"))
    rows = [
        f"<tr><td>{html.escape(label)}</td><td>{_fmt(bot.get(key), kind)}</td><td>{_fmt(human.get(key), kind)}</td></tr>"
        for key, label, kind in KPIS
        if key in bot or key in human
    ]
    if not rows:
        return NO_DATA
    out = (
        '<table class="kpis"><thead><tr><th></th><th>Bot</th><th>Human</th></tr></thead><tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table>\n"
    )
    if saving:
        out += (
            f'<p class="saving">Cost if every contact had gone to a human: {_fmt(saving.get("all_human_cost"), "money")}'
            f" · actual cost: {_fmt(saving.get('actual_cost'), 'money')} · saving: <strong>{_fmt(saving.get('saving'), 'money')}</strong></p>\n"
        )
    return out


AGENT_COLUMNS = [  # key, header, format
    ("contacts", "Contacts", "int"),
    ("aht_seconds", "AHT", "sec"),
    ("fcr", "FCR", "pct"),
    ("csat", "CSAT", "pct"),
    ("transfers", "Transfers", "int"),
    ("suggestions_answered", "Suggestions answered", "int"),
    ("suggestion_acceptance", "Used or edited", "pct"),
]


def _agents(agents) -> str:
    """One row per agent, the lowest suggestion acceptance first: who to coach on the AI tools."""
    items = _list(agents)
    if not items:
        return NO_DATA if agents is None else '<p class="empty">no agent handled a contact in this range</p>\n'
    items.sort(key=lambda a: (_num(a.get("suggestion_acceptance")) is None, _num(a.get("suggestion_acceptance")) or 0))
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for _, h, _ in AGENT_COLUMNS)
    rows = "\n".join(
        f"<tr><td>{e(str(a.get('agent_id') or '?'))}</td>"
        + "".join(f"<td>{_fmt(a.get(key), kind)}</td>" for key, _, kind in AGENT_COLUMNS)
        + "</tr>"
        for a in items
    )
    return f'<table class="kpis agents"><thead><tr><th>Agent</th>{head}</tr></thead><tbody>\n{rows}\n</tbody></table>\n'


def _figure(chart_id: str, has_data: bool, caption: str = "", keep: bool = False) -> str:
    if not has_data:  # keep: the caption carries numbers worth showing even without the chart
        return NO_DATA + (f'<p class="meta">{caption}</p>\n' if keep and caption else "")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="chart" id="{chart_id}">{cap}</figure>\n'


def _staffing_caption(st: dict) -> str:
    rec, peak = _dict(st.get("recommended")), _dict(st.get("peak"))
    if not rec and not peak:
        return ""

    def outcome(r: dict) -> str:
        return (
            f"{_fmt(r.get('agents'), 'int')} agents (service level {_fmt(r.get('service_level'), 'pct')},"
            f" occupancy {_fmt(r.get('occupancy'), 'pct')}, ASA {_fmt(r.get('asa_seconds'), 'sec')})"
        )

    text = (
        f"{_fmt(st.get('calls_per_hour'), 'dec')} calls/hour, AHT {_fmt(st.get('aht_seconds'), 'sec')},"
        f" target {_fmt(st.get('target_level'), 'pct')} answered within {_fmt(st.get('target_seconds'), 'sec')}"
    )
    if rec:
        text += f": {outcome(rec)} recommended."
    if peak:
        text += f" At peak (×{_fmt(st.get('peak_multiplier'), 'dec')} the volume): {outcome(peak)}."
    return html.escape(text)


def _alerts(alerts, window=None) -> str:
    """The alerts analytics raised (relais.alerts.v1), as it stored them; the report judges nothing itself."""
    items = _list(alerts)
    e = html.escape
    per = f" per {e(str(window))}" if window else ""
    note = (
        f'<p class="meta">Raised by analytics on relais.alerts.v1{per}, once a window is complete and its data has'
        " settled: a window still going has none yet.</p>\n"
    )
    if not items:
        return NO_DATA if alerts is None else note + '<p class="empty">no alert raised in this range</p>\n'
    lis = "\n".join(
        f'<li><span class="kind">{e(str(a.get("kind") or "alert").replace("_", " "))}</span>'
        f"{' · ' + e(str(a['window_start'])) if a.get('window_start') else ''}: {e(str(a.get('detail') or ''))}"
        f"{' (raised ' + e(str(a['raised_at'])) + ')' if a.get('raised_at') else ''}</li>"
        for a in items
    )
    return note + f'<ul class="alerts">\n{lis}\n</ul>\n'
