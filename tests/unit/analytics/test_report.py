"""`relais report`: the HTML document itself, then the charts as drawn by headless Chromium."""

import copy
import html.parser
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from relais.analytics import report

CHROMIUM = Path("/usr/bin/chromium")
PWN = '<img src=x onerror="document.body.dataset.pwned=1">'
EXAMPLE = {
    "title": "relais — contact-center report",
    "generated_at": "2026-11-30T10:00:00+00:00",
    "window": "day",
    "totals": {
        "bot": {
            "contacts": 120,
            "containment": 0.62,
            "false_containment": 0.08,
            "fcr": 0.7,
            "csat": 0.81,
            "nps": 12.0,
            "aht_seconds": 35.0,
            "cost_per_contact": 0.4,
        },
        "human": {
            "contacts": 80,
            "fcr": 0.75,
            "csat": None,
            "nps": 30.0,
            "aht_seconds": 410.0,
            "asa_seconds": 18.0,
            "service_level": 0.82,
            "abandonment": 0.05,
            "occupancy": 0.77,
            "contacts_per_agent_hour": 6.1,
            "cost_per_contact": 4.8,
        },
        "saving": {"all_human_cost": 960.0, "actual_cost": 432.0, "saving": 528.0},
    },
    "series": [
        {
            "window_start": "2026-11-28T00:00:00+00:00",
            "bot": {"contacts": 60, "containment": 0.6, "csat": 0.8, "fcr": 0.7},
            "human": {"contacts": 40, "csat": 0.85, "fcr": 0.74, "service_level": 0.8},
        },
        {
            "window_start": "2026-11-29T00:00:00+00:00",
            "bot": {"contacts": 30, "containment": 0.65, "csat": None, "fcr": 0.7},
            "human": {"contacts": 20, "csat": 0.86, "fcr": 0.75, "service_level": 0.84},
        },
        {
            "window_start": "2026-11-30T00:00:00+00:00",
            "bot": {"contacts": 30, "containment": 0.62, "csat": 0.82, "fcr": 0.7},
            "human": {"contacts": 20, "csat": 0.87, "fcr": 0.76, "service_level": 0.82},
        },
    ],
    "irritants": [
        {
            "label": "delivery · late",
            "size": 42,
            "previous_size": 21,
            "trend": 1.0,
            "examples": ["my parcel is late again", "</script><script>document.body.dataset.pwned=1</script>", PWN],
        },
        {
            "label": "billing · double charge",
            "size": 17,
            "previous_size": 20,
            "trend": -0.15,
            "examples": ["charged twice"],
        },
        {"label": "<b>login</b> & password", "size": 5, "previous_size": 0, "trend": None, "examples": []},
    ],
    "staffing": {
        "calls_per_hour": 120.0,
        "aht_seconds": 300.0,
        "target_level": 0.8,
        "target_seconds": 20,
        "recommended": {"agents": 14, "service_level": 0.86, "occupancy": 0.71, "asa_seconds": 9.1},
        "peak_multiplier": 3.0,
        "peak": {"agents": 35, "service_level": 0.82, "occupancy": 0.86, "asa_seconds": 8.0},
        "curve": [
            {"agents": a, "service_level": sl, "occupancy": 10 / a, "asa_seconds": 60.0 / (a - 10)}
            for a, sl in ((11, 0.45), (12, 0.68), (13, 0.79), (14, 0.86), (15, 0.92), (16, 0.95))
        ],
    },
    "alerts": [
        {
            "kind": "over_automation",
            "window_start": "2026-11-30T00:00:00+00:00",
            "detail": "containment 0.50 -> 0.70 while bot CSAT 0.80 -> 0.55 <script>alert(1)</script>",
        }
    ],
}
CHARTS = ("chart-contacts", "chart-containment", "chart-irritants", "chart-staffing")


def expected_marks(data: dict) -> dict[str, int]:
    def points(side, key):
        return sum(p[side].get(key) is not None for p in data["series"])

    return {
        "chart-contacts": points("bot", "contacts") + points("human", "contacts"),  # 2 x len(series)
        "chart-containment": points("bot", "containment") + points("bot", "csat"),  # one CSAT is None
        "chart-irritants": len(data["irritants"]),
        "chart-staffing": len(data["staffing"]["curve"]),
    }


def test_full_report_has_kpis_sections_and_formatted_values():
    page = report.render_report(EXAMPLE)
    assert page.startswith("<!DOCTYPE html>") and page.count("no data yet") == 0
    for chart in CHARTS:
        assert f'<figure class="chart" id="{chart}">' in page
    assert "<td>Containment</td><td>62 %</td><td>—</td>" in page  # human side has no containment
    assert "<td>CSAT</td><td>81 %</td><td>—</td>" in page  # None -> dash
    assert "410 s (6 min 50)" in page and "+12" in page and "528.00" in page
    assert "14 agents" in page and "35 agents" in page  # recommended and peak staffing
    assert "over automation" in page


def test_empty_and_partial_data_say_no_data_yet():
    page = report.render_report({})
    assert page.count("no data yet") == 6 and 'class="chart"' not in page
    partial = report.render_report(
        {
            "series": [{"window_start": "x", "bot": {"contacts": None}}],
            "totals": {"bot": {}},
            "irritants": [],
            "staffing": {"curve": [], "recommended": {"agents": 3}},
            "alerts": None,
            "nps": float("nan"),
        }
    )
    assert partial.count("no data yet") == 6 and "3 agents" in partial and "NaN" not in partial


def test_hostile_text_is_escaped_and_nothing_is_loaded_from_outside():
    page = report.render_report(EXAMPLE)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    assert "<img" not in page and "</script><script>document" not in page  # verbatims live only in escaped JSON
    data = page.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and "\\u003c/script\\u003e" in data
    assert page.count("<script") == 2  # the data element and the chart script
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "default-src 'none'" in page  # CSP: no network even if something slipped through


def test_write_report_creates_the_file(tmp_path):
    path = report.write_report(EXAMPLE, tmp_path / "out" / "report.html")
    assert path.read_text(encoding="utf-8") == report.render_report(EXAMPLE)


class _Dom(html.parser.HTMLParser):
    """Figures by id with their attributes, the tags drawn inside them and their SVG texts (each `<text>`
    as the list of its lines, `<tspan>`s or its own text); the body's attributes."""

    def __init__(self):
        super().__init__()
        self.figures, self.body, self._open, self._text, self._in = {}, {}, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "body":
            self.body = attrs
        elif tag == "figure":
            self._open = attrs.get("id")
            self.figures[self._open] = {"attrs": attrs, "tags": [], "texts": []}
        elif self._open:
            self.figures[self._open]["tags"].append(tag)
            if tag == "text":
                self._text = []
                self.figures[self._open]["texts"].append(self._text)
            if tag in ("text", "tspan", "title"):
                self._in = tag
            if tag == "tspan" and self._text is not None:
                self._text.append("")

    def handle_data(self, data):
        if self._text is not None and self._in in ("text", "tspan"):
            if not self._text:
                self._text.append("")
            self._text[-1] += data

    def handle_endtag(self, tag):
        if tag == "figure":
            self._open = None
        elif tag == "text":
            self._text = None
        if tag in ("text", "tspan", "title"):
            self._in = "text" if tag in ("tspan", "title") and self._text is not None else None


def _dump_dom(path: Path) -> str:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI: infra/prereqs.sh installs it")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:  # fresh profile: no first-run work, no network
        run = subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=5000",
                "--dump-dom",
                path.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_charts_render_in_headless_chromium(tmp_path):
    dom = _Dom()
    dom.feed(_dump_dom(report.write_report(EXAMPLE, tmp_path / "report.html")))
    assert set(dom.figures) == set(CHARTS)
    for chart, marks in expected_marks(EXAMPLE).items():
        fig = dom.figures[chart]
        assert fig["attrs"].get("data-rendered") == "true", chart
        assert fig["attrs"].get("data-marks") == str(marks), chart
        assert "svg" in fig["tags"] and {"path", "rect", "circle"} & set(fig["tags"]), chart
    assert dom.figures["chart-irritants"]["tags"].count("rect") == 3
    assert "data-pwned" not in dom.body and "pwned" not in str(dom.body)  # hostile verbatims did not run
    for chart in CHARTS:
        assert dom.figures[chart]["attrs"].get("data-overflow") == "0", chart


LONG_VERBATIM = (
    "Bonjour, cela fait maintenant trois semaines que j'attends le remboursement de ma commande retournée, "
    "j'ai appelé quatre fois, personne ne me rappelle jamais et à chaque fois on me dit que c'est en cours "
    "de traitement alors que le transporteur confirme la livraison du retour depuis le 3 novembre"
)


def test_long_verbatims_wrap_and_no_topic_is_labelled_with_a_question_mark(tmp_path):
    data = {
        "irritants": [
            {
                "label": "",
                "size": 9,
                "previous_size": 3,
                "trend": 2.0,
                "examples": [LONG_VERBATIM, "x" * 300, "short one"],
            },
            {
                "label": "remboursement · retour · transporteur · inadmissible",
                "size": 4,
                "previous_size": 4,
                "trend": 0.0,
                "examples": [LONG_VERBATIM[:150]],
            },
            {"size": 3, "examples": []},
        ]
    }
    dom = _Dom()
    dom.feed(_dump_dom(report.write_report(data, tmp_path / "report.html")))
    chart = dom.figures["chart-irritants"]
    assert chart["attrs"].get("data-rendered") == "true" and chart["attrs"].get("data-marks") == "3"
    assert chart["attrs"].get("data-overflow") == "0"  # every line fits inside the chart
    lines = {" ".join(text): text for text in chart["texts"]}
    long_one = next(text for joined, text in lines.items() if joined.startswith("“Bonjour, cela fait"))
    assert len(long_one) >= 3  # wrapped on several lines, the whole verbatim kept
    assert " ".join(long_one).replace("“", "").replace("”", "").split() == LONG_VERBATIM.split()
    assert len(next(text for joined, text in lines.items() if joined.startswith("“xxx"))) >= 3
    labels = [
        " ".join(text)
        for text in chart["texts"][::1]
        if text and not text[0].startswith("“") and not text[0][:1].isdigit()
    ]
    assert "?" not in labels and "" not in labels
    assert any(label.startswith("Bonjour, cela fait") for label in labels), labels  # label from its first verbatim
    assert "unlabelled topic" in labels  # neither label nor verbatim: said so, not "?"


def test_alerts_are_the_raised_ones_and_none_is_said_so():
    page = report.render_report({"alerts": [], "alert_window": "day"})
    assert "no alert raised in this range" in page and "Raised by analytics on relais.alerts.v1 per day" in page
    raised = report.render_report(
        {
            "alerts": [
                {
                    "kind": "service_level",
                    "window_start": "2026-11-29T00:00:00+00:00",
                    "detail": "service level 0.50 under target 0.80",
                    "raised_at": "2026-11-30T00:00:31+00:00",
                }
            ]
        }
    )
    assert "service level</span> · 2026-11-29T00:00:00+00:00: service level 0.50 under target 0.80" in raised
    assert "(raised 2026-11-30T00:00:31+00:00)" in raised


def test_empty_report_renders_in_headless_chromium(tmp_path):
    data = copy.deepcopy(EXAMPLE)
    del data["series"], data["irritants"]
    dom = _Dom()
    dom.feed(_dump_dom(report.write_report(data, tmp_path / "report.html")))
    # the missing charts are "no data yet", the others still draw
    assert (
        set(dom.figures) == {"chart-staffing"} and dom.figures["chart-staffing"]["attrs"].get("data-rendered") == "true"
    )


def test_agents_are_listed_the_lowest_suggestion_acceptance_first():
    agents = [
        {
            "agent_id": "alice",
            "contacts": 12,
            "aht_seconds": 300.0,
            "fcr": 0.75,
            "csat": 0.9,
            "transfers": 1,
            "suggestions_answered": 10,
            "suggestion_acceptance": 0.8,
        },
        {
            "agent_id": "<bob>",
            "contacts": 9,
            "aht_seconds": None,
            "fcr": None,
            "csat": None,
            "transfers": 4,
            "suggestions_answered": 20,
            "suggestion_acceptance": 0.1,
        },
        {"agent_id": "carol", "contacts": 0, "transfers": 0, "suggestions_answered": 0},
    ]
    page = report.render_report({**EXAMPLE, "agents": agents})
    table = page.split('<table class="kpis agents">', 1)[1].split("</table>", 1)[0]
    assert table.index("&lt;bob&gt;") < table.index("alice") < table.index("carol")  # carol: no answer, last
    assert (
        "<td>alice</td><td>12</td><td>300 s (5 min 00)</td><td>75 %</td><td>90 %</td><td>1</td><td>10</td><td>80 %</td>"
        in table
    )
    assert "<td>&lt;bob&gt;</td><td>9</td><td>—</td><td>—</td><td>—</td><td>4</td><td>20</td><td>10 %</td>" in table
    assert "no agent handled a contact" in report.render_report({"agents": []})
    assert "Agents:" not in report.render_report(EXAMPLE)  # data without the agent dimension: no section
