"""``report.html``: one self-contained page (figures embedded, tables, the run's configuration and
versions) built from what ``report.py`` wrote: its ``summary.md`` sections and its figures.

Only the small Markdown subset that the report itself writes is rendered (``##`` headings,
paragraphs, pipe tables); every text is HTML-escaped, so a name in someone's results cannot inject
markup. Figures are embedded as base64 PNG (or inline SVG), so the page works offline and by mail.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from model_emotion.report.tables import POINTS

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
.wide { overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } .scroll { overflow-x: auto; max-width: 100%; }
figure img, figure svg { max-width: none; height: auto; border: 1px solid #eee; }
figure img.fit { max-width: 100%; box-sizing: border-box; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 1em; font-size: 0.9em; }
dt { font-weight: 600; } dd { margin: 0; }
figcaption { font-size: 0.85em; color: #555; } pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 0.8em; }
"""


_CELL_BOUNDARY = re.compile(r"(?<!\\)\|")
_ESCAPED = re.compile(r"\\(.)")


_CODE = re.compile(r"(?<!\\)`([^`]*)`")


def _text(markdown: str) -> str:
    """Markdown text (with ``tables.md_escape`` escapes and `code` spans) as escaped HTML text."""
    parts = _CODE.split(markdown)
    return "".join(
        f"<code>{html.escape(part)}</code>" if i % 2 else html.escape(_ESCAPED.sub(r"\1", part))
        for i, part in enumerate(parts)
    )


def _table(lines: list[str]) -> str:
    rows = [[cell.strip() for cell in _CELL_BOUNDARY.split(line.strip().strip("|"))] for line in lines]
    rows = [row for row in rows if not all(set(cell) <= set("-: ") for cell in row)]  # drop the rule line
    if not rows:
        return ""
    head = "".join(f"<th>{_text(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in row) + "</tr>" for row in rows[1:])
    # Wide tables scroll sideways inside the page instead of running off its edge.
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def markdown_to_html(text: str) -> str:
    """The report's Markdown (headings, paragraphs, bulleted lists, pipe tables) as escaped HTML."""
    out, table, paragraph, items = [], [], [], []

    def flush():
        if table:
            out.append(_table(table))
            table.clear()
        if paragraph:
            out.append(f"<p>{_text(' '.join(paragraph))}</p>")
            paragraph.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_text(item)}</li>" for item in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            if paragraph or items:
                flush()
            table.append(line)
        elif line.startswith("#"):
            flush()
            level = min(len(line) - len(line.lstrip("#")), 4)
            out.append(f"<h{level}>{_text(line.lstrip('#').strip())}</h{level}>")
        elif not line.strip():
            flush()
        elif line.startswith("- "):
            if table or paragraph:
                flush()
            items.append(line[2:].strip())
        else:
            if table or items:
                flush()
            paragraph.append(line.strip())
    flush()
    return "\n".join(out)


FIT_WIDTH = 1600  # pixels (150 dpi): scaled into the 1100 px page at 0.69 or more

# Figure stem (without a "paper_" prefix) -> (section, what it shows and how to read it).
FIGURES = [
    (
        "accuracy_per_emotion",
        "Prompts",
        "Each emotion's prompt accuracy on its balanced dev set (the best epoch, so biased upwards) and, when "
        "recorded, on its test set with the number of test examples (n) at the right; bars are means over seeds, "
        "lines the spread over seeds; the paper's RoBERTa dev accuracy beside it when given.",
    ),
    (
        "selectivity_tau",
        "Neurons and attributes",
        "Kendall tau of each neuron's RDM with each attribute's RDM, one panel per layer (L0 nearest the input): "
        "where attribute-like geometry sits in the model. Red is positive, blue negative, grey not significant "
        "under the run's test.",
    ),
    (
        "selectivity_by_layer",
        "Neurons and attributes",
        "Significant neurons per layer and attribute, counted with the "
        "run's test (each panel one attribute, one y scale for all).",
    ),
    (
        "rdm_neuron",
        "Neurons and attributes",
        "The emotion x emotion dissimilarity matrix of the neuron that correlates "
        "best with the named attribute, beside the attribute's own RDM.",
    ),
    (
        "null_counts",
        "What survives",
        "Each attribute's count of significant neurons (red line) against the same count "
        "when the emotion labels are permuted (the null distribution): a count inside its null is not evidence.",
    ),
    (
        "masking_accuracy_vs_k",
        "Masking (causal step)",
        "Accuracy with the top-k neurons of each attribute silenced, "
        "beside random masks of the same size per layer, as k grows.",
    ),
    (
        "drop_beyond_baselines",
        "Masking (causal step)",
        "At one k, each attribute's accuracy lost beyond random masks (red) and beyond masks of the top k of "
        "rankings made with shuffled emotion labels (blue), in points with 95% intervals over prompts and "
        "examples: an interval clear of 0 is a drop the baseline does not explain.",
    ),
    (
        "drop_beyond_random",
        "Masking (causal step)",
        "Accuracy lost beyond what random masks of the same size lose, "
        "per emotion and attribute, in points: red is a larger drop, blue a smaller one, white none.",
    ),
    (
        "attribute_importance",
        "Human side",
        "How much each attribute's RDM explains human similarity judgments "
        "(tau with 95% bootstrap intervals over participants).",
    ),
    (
        "importance_vs_drop",
        "Human side",
        "Attribute importance for people against the accuracy lost when the attribute's top neurons are masked.",
    ),
    (
        "agreement_vs_accuracy",
        "Human side",
        "How much raters agree on an emotion against how well its prompt classifies it.",
    ),
    (
        "model_rsa",
        "Human side",
        "The model's emotion RDM per layer against the attribute RDMs and the human "
        "similarity judgments (model-level RSA).",
    ),
]
SECTIONS = [
    "Prompts",
    "Neurons and attributes",
    "What survives",
    "Masking (causal step)",
    "Human side",
    "Other figures",
]

# Every column the report's tables can hold, in words.
GLOSSARY = {
    "attribute": "an emotion attribute rated by people (or a space of attributes)",
    "layer": "the model layer (0 = nearest the input); all = every layer",
    "n_significant": "neurons whose RDM correlates with the attribute's at the run's significance rule",
    "n_selective": "significant neurons that are significant for this attribute only",
    "n_neurons": "neurons in the layer",
    "k": "how many top-ranked neurons a mask silences",
    "top_drop": "accuracy lost when the top-k neurons are silenced (unmasked minus masked)",
    "top_ci_low": "lower end of the 95% interval of top_drop",
    "top_ci_high": "upper end of the 95% interval of top_drop",
    "random_drop": "accuracy lost when k random neurons (same count per layer) are silenced",
    "drop_beyond_random": "top_drop minus random_drop: the accuracy lost because of which neurons were masked",
    "drop_ci_low": "lower end of the 95% interval of drop_beyond_random",
    "drop_ci_high": "upper end of the 95% interval of drop_beyond_random",
    "drop_beyond_permuted": "accuracy lost beyond masks of the top k of rankings made with shuffled emotion labels",
    "permuted_ci_low": "lower end of the 95% interval of drop_beyond_permuted",
    "permuted_ci_high": "upper end of the 95% interval of drop_beyond_permuted",
    "p_permuted": "one-sided p of drop_beyond_permuted > 0 (t, clustered by emotion and draw)",
    "min_detectable_drop": "the smallest drop beyond random a one-sided test at 5% detects with 80% power at this run's variance",
    "ci_over": "the clusters of the intervals: emotions and random draws (pooled draws: the paper's, over attributes)",
    "ablation": "what the masked neurons were set to: zero (the paper's), mean, resample or scale",
    "selection": "held_out: the masks were ranked on other seeds than those evaluated; circular: on the same prompts",
    "drop_se": "standard error of drop_beyond_random, clustered by emotion and by random draw",
    "drop_df": "degrees of freedom of its t quantiles: min(emotions, draws) - 1",
    "p_random": "one-sided p of drop_beyond_random > 0 (t with drop_df)",
    "p_random_holm": "p_random after Holm's correction across the attributes",
    "rank_p_random": "exact rank of the top mask's accuracy among the random draws' (prompts held fixed)",
    "n_random_draws": "random masks the top mask was compared with",
    "random_draw_skew": "skewness of the random draws' mean accuracies (few, skewed draws make the t test liberal)",
    "permuted_se": "standard error of drop_beyond_permuted, clustered by emotion and by permuted-ranking draw",
    "permuted_df": "degrees of freedom of its t quantiles",
    "p_permuted_holm": "p_permuted after Holm's correction across the attributes",
    "rank_p_permuted": "exact rank of the top mask's accuracy among the permuted-ranking masks'",
    "n_permuted_draws": "permuted-ranking masks the top mask was compared with",
    "permuted_draw_skew": "skewness of the permuted-ranking masks' mean accuracies",
    "n_pairs": "prompts (emotion x seed) in the comparison",
    "significant": "neurons significant by the paper's parametric test (BH over neurons)",
    "observed": "the count of significant neurons on the real emotion labels",
    "null_mean": "the mean of that count over emotion-label permutations",
    "null_p95": "the 95th percentile of that count over permutations",
    "null_max": "the largest count over permutations",
    "count_p": "share of permutations (plus one) whose count reaches the observed one",
    "test": "which test and correction the count is made with",
    "fwer_survivors": "neurons whose max-T family-wise adjusted p within the attribute is at most alpha",
    "fwer_across_survivors": "the same with family-wise error over all attributes (studentized max-T by default)",
    "split_half_spearman": "agreement (Spearman) of the neuron statistics between two halves of the seeds",
    "split_half_chance": "the same agreement with the attribute's emotions relabelled for both halves (null mean)",
    "split_half_p_holm": "relabelling p of the seed-half agreement, Holm across the attributes",
    "confounded_by": "nuisance RDMs that the attribute's RDM follows (Mantel, Holm p < 0.05)",
    "verdict": "which of the paper's claims hold for the attribute on this run, in words",
    "tau": "Kendall tau between two RDMs",
    "kendall_tau": "Kendall tau between two RDMs",
    "spearman_rho": "Spearman correlation between two RDMs or two measures",
    "p_value": "one-sided p of the correlation (parametric)",
    "q_value": "p adjusted by Benjamini-Hochberg over the rows of the table",
    "ci_low": "lower end of the 95% bootstrap interval over participants",
    "ci_high": "upper end of the 95% bootstrap interval over participants",
    "n_attributes": "attributes in the comparison",
    "n_emotions": "emotions in the comparison",
    "measure": "which quantity is compared",
    "pearson_r": "Pearson correlation",
    "pearson_p": "two-sided p of the Pearson correlation",
    "spearman_p": "two-sided p of the Spearman correlation",
    "control_share": "the control prompts' significant count as a share of the trained prompts'",
    "ours": "this run's value",
    "paper": "the paper's released value",
    "difference": "this run's value minus the paper's",
}


def _caption(stem: str) -> tuple[str, str]:
    """(section, caption) of a figure by its file stem."""
    base = stem.removeprefix("paper_")
    who = "The paper's released data. " if stem.startswith("paper_") else ""
    for prefix, section, text in FIGURES:
        if base.startswith(prefix):
            return section, who + text
    return "Other figures", who + base.replace("_", " ")


def _figure(path: Path) -> str:
    section, text = _caption(path.stem)
    caption = html.escape(text)
    alt = html.escape(path.stem.replace("_", " "))
    if path.suffix == ".png":
        raw = path.read_bytes()
        data = base64.b64encode(raw).decode("ascii")
        # A figure up to FIT_WIDTH pixels wide is scaled to the page (its 7 pt text stays at least about
        # 11 px); a wider one keeps its size and scrolls sideways inside the page.
        width = int.from_bytes(raw[16:20], "big") if raw[:8] == b"\x89PNG\r\n\x1a\n" else 0
        fit = ' class="fit"' if 0 < width <= FIT_WIDTH else ""
        return (
            f'<figure id="fig-{html.escape(path.stem)}"><div class="scroll"><img{fit} alt="{alt}" '
            f'src="data:image/png;base64,{data}"></div><figcaption>{caption}</figcaption></figure>'
        )
    if path.suffix == ".svg":
        svg = path.read_text(encoding="utf-8")
        svg = svg[svg.find("<svg") :]  # drop the XML prolog and doctype
        return f'<figure id="fig-{html.escape(path.stem)}"><div class="scroll">{svg}</div><figcaption>{caption}</figcaption></figure>'
    return ""


def _table_columns(markdown: str) -> list[str]:
    """The header cells of every table in the report's Markdown, in order, once each."""
    out: list[str] = []
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            for cell in _CELL_BOUNDARY.split(line.strip().strip("|")):
                name = _ESCAPED.sub(r"\1", cell.strip())
                if name and name not in out:
                    out.append(name)
    return out


def build_report_html(
    title: str,
    summary_markdown: str,
    figures: list[Path],
    run_record: dict,
    overview: dict | None = None,
    verdict: list[str] | None = None,
) -> str:
    """The whole page, in semantic sections: what was run, the verdict, the tables, the figures in
    their sections with captions, a glossary of every table column, and the configuration."""
    by_section: dict[str, list[str]] = {name: [] for name in SECTIONS}
    seen = set()
    for path in sorted(figures, key=lambda p: (p.stem, p.suffix != ".png")):  # PNG first, else SVG
        if path.stem in seen or path.suffix not in (".png", ".svg"):
            continue
        seen.add(path.stem)
        by_section[_caption(path.stem)[0]].append(_figure(path))
    parts = [f"<header><h1>{html.escape(title)}</h1></header>", "<main>"]
    if overview:
        items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in overview.items())
        parts.append(f'<section id="run"><h2>What was run</h2><dl>{items}</dl></section>')
    if verdict:
        parts.append(
            '<section id="verdict"><h2>Verdict</h2>'
            + "".join(f"<p>{html.escape(s)}</p>" for s in verdict)
            + "</section>"
        )
    parts.append(f'<section id="tables"><h2>Tables</h2>{markdown_to_html(summary_markdown)}</section>')
    for name, blocks in by_section.items():
        if blocks:
            slug = re.sub(r"[^a-z]+", "-", name.lower()).strip("-")
            parts.append(
                f'<section id="fig-{slug}" class="figures"><h2>{html.escape(name)}</h2>'
                + "\n".join(blocks)
                + "</section>"
            )
    columns = _table_columns(summary_markdown)
    if columns:
        entries = "".join(f"<dt>{html.escape(c)}</dt><dd>{html.escape(_meaning(c))}</dd>" for c in columns)
        parts.append(f'<section id="glossary"><h2>Glossary</h2><dl>{entries}</dl></section>')
    config = html.escape(json.dumps(run_record, indent=2, default=str))
    parts.append(f'<section id="configuration"><h2>Configuration and versions</h2><pre>{config}</pre></section>')
    parts.append("</main>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head><body>\n'
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def _meaning(column: str) -> str:
    """A column's glossary entry (a drop shown in points: its entry, with the unit)."""
    if column.endswith(POINTS):
        base = column.removesuffix(POINTS)
        return GLOSSARY.get(base, _guess(base)) + "; in points of accuracy here (a fraction in the CSV files)"
    return GLOSSARY.get(column, _guess(column))


def _guess(column: str) -> str:
    """A column without a glossary entry (a trained/control pair, a human-side table) in words."""
    for prefix in ("trained_", "control_", "paper_", "ours_"):
        if column.startswith(prefix) and column[len(prefix) :] in GLOSSARY:
            return f"{prefix[:-1]} prompts: " + GLOSSARY[column[len(prefix) :]]
    return "see the section the table sits in"
