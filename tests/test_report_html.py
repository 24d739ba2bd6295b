"""report.html explains itself: semantic sections in a fixed order, every figure captioned inside its
section, a glossary entry for every table column, the run's configuration; checked on the page's
structure here, and, where a headless Chromium is installed, on its rendered layout."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from test_report import make_results

from model_emotion.commands import report
from model_emotion.report.html import _meaning, _table_columns

ORDER = ["run", "verdict", "tables"]


class Outline(HTMLParser):
    """Sections (id, class), figures with their section and whether they have a caption."""

    def __init__(self):
        super().__init__()
        self.sections, self.figures, self.stack = [], [], []
        self.glossary_terms: list[str] = []
        self._in_dt = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
            self.stack.append(attrs.get("id"))
        elif tag == "figure":
            self.figures.append({"section": self.stack[-1] if self.stack else None, "caption": False})
        elif tag == "figcaption" and self.figures:
            self.figures[-1]["caption"] = True
        elif tag == "dt" and self.stack and self.stack[-1] == "glossary":
            self._in_dt = True

    def handle_endtag(self, tag):
        if tag == "section" and self.stack:
            self.stack.pop()
        if tag == "dt":
            self._in_dt = False

    def handle_data(self, data):
        if self._in_dt:
            self.glossary_terms.append(data)


@pytest.fixture(scope="module")
def page(tmp_path_factory, shared):
    root = make_results(tmp_path_factory.mktemp("results") / "results")
    # a permutation test's null counts: the page then has its "what survives" table and verdicts
    rows = [f"{a},parametric_bh,{6 + i},4.5,9.0,12,0.{3 + i}" for i, a in enumerate(("valence", "arousal"))]
    (root / "neuron_rank" / "r_null_counts.csv").write_text(
        "attribute,test,observed,null_mean,null_p95,null_max,count_p\n" + "\n".join(rows) + "\n"
    )
    out = tmp_path_factory.mktemp("report") / "report"
    argv = [
        "--results_dir",
        str(root),
        "--output_dir",
        str(out),
        "--attributes",
        str(shared / "emotion_attributes"),
        "--k",
        "4",
    ]
    assert report.main(argv) == 0
    return out / "report.html"


def test_sections_figures_and_glossary(page):
    text = page.read_text()
    outline = Outline()
    outline.feed(text)
    top = [s for s in outline.sections if s in ORDER or s in ("glossary", "configuration") or str(s).startswith("fig-")]
    assert top[: len(ORDER)] == ORDER and top[-2:] == ["glossary", "configuration"]
    assert all(s.startswith("fig-") for s in top[len(ORDER) : -2]) and len(top) > len(ORDER) + 2
    assert outline.figures and all(f["caption"] and str(f["section"]).startswith("fig-") for f in outline.figures)
    summary = (page.parent / "summary.md").read_text()
    columns = _table_columns(summary)
    assert set(columns) <= set(outline.glossary_terms)
    assert [c for c in columns if _meaning(c).startswith("see the section")] == []
    # drops in points, their unit named in the header and in the glossary
    assert "drop_beyond_random (pts)" in columns and "points of accuracy" in _meaning("drop_beyond_random (pts)")
    assert '"fdr"' not in text  # the report's own drawing flags are not shown as the run's settings
    assert "<dt>masks</dt>" in text and "<dt>prompts</dt>" in text


def _chromium() -> str | None:
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


LAYOUT_PROBE = """
<script>
window.addEventListener('load', () => {
  const sections = [...document.querySelectorAll('main > section')].map(s => s.id);
  const figures = [...document.querySelectorAll('figure')].map(f => ({
    inSection: !!f.closest('section.figures'),
    captioned: !!f.querySelector('figcaption') && f.querySelector('figcaption').textContent.trim().length > 20,
  }));
  const rows = [...document.querySelectorAll('tr')].map(r => r.getBoundingClientRect().height);
  const facts = {sections, figures, scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth,
                 bodyWidth: document.body.getBoundingClientRect().width, tallestRow: Math.max(...rows),
                 tables: document.querySelectorAll('table').length};
  document.body.setAttribute('data-facts', JSON.stringify(facts));
});
</script>
"""


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium installed (apt install chromium-headless-shell)")
def test_rendered_in_headless_chromium(page, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", LAYOUT_PROBE + "</body>"))
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,900",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    start = proc.stdout.index('data-facts="') + len('data-facts="')
    import html

    facts = json.loads(html.unescape(proc.stdout[start : proc.stdout.index('"', start)]))
    assert facts["sections"][:3] == ORDER and facts["sections"][-2:] == ["glossary", "configuration"]
    assert facts["figures"] and all(f["inSection"] and f["captioned"] for f in facts["figures"])
    assert facts["scrollWidth"] <= facts["width"], facts  # wide figures scroll inside, the page does not
    assert facts["tables"] >= 3 and facts["tallestRow"] < 80, facts  # no column of sentences squeezed into a table


def test_every_figure_the_report_draws_has_its_section_and_caption():
    from model_emotion.report.html import _caption

    stems = [
        "accuracy_per_emotion",
        "selectivity_tau",
        "selectivity_by_layer",
        "null_counts_permutation_maxt",
        "masking_accuracy_vs_k",
        "drop_beyond_baselines_k737",
        "drop_beyond_random_k737",
        "rdm_neuron2785_valence",
        "attribute_importance",
        "importance_vs_drop",
        "agreement_vs_accuracy",
        "model_rsa",
        "paper_accuracy_per_emotion",
    ]
    for stem in stems:
        section, caption = _caption(stem)
        assert section != "Other figures" and len(caption) > 40, stem


def test_survival_verdicts_are_sentences_under_their_table(page):
    text = page.read_text()
    assert "what survives" in text and "<th>verdict</th>" not in text
    assert "Verdict per attribute" in text and "<li>valence: " in text
