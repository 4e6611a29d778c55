"""The model card of a trained model: Markdown and one self-contained HTML page, written beside the model.

Both are rendered from the same sections (`card_sections`), a pure function of the model's manifest.json and what
the TrainingRun states (spec.card, spec.gates), plus the address of the check report behind a retrain. No I/O
here except `write_card`, so every word of a card is unit-testable.

Sections whose data another part of Gyre adds to the manifest (`importances`, `slices`) say "not computed" when
the manifest has no such key. User text (intended use, limitations, owners, column and class names) is always
shown as text: escaped in HTML, and in Markdown stripped of the characters that would make it markup.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gyre.api.gates import GatesVerdict, evaluate_gates
from gyre.api.trainingrun import LOWER_IS_BETTER, CardSpec, Gate, TrainingRunSpec
from gyre.html_page import fmt_number, html_page
from gyre.training.manifest import ModelManifest

__all__ = [
    "CARD_HTML",
    "CARD_MARKDOWN",
    "NOT_COMPUTED",
    "CardInputs",
    "Importances",
    "Section",
    "Slices",
    "Table",
    "TriggerRef",
    "card_sections",
    "parse_trigger",
    "render_html",
    "render_markdown",
    "trigger_report_path",
    "write_card",
]

CARD_MARKDOWN = "card.md"
CARD_HTML = "card.html"
NOT_COMPUTED = "not computed"


class _View(BaseModel):
    # Read-only views of manifest keys other modules write: extra keys are tolerated.
    model_config = ConfigDict(extra="ignore")


class FeatureImportance(_View):
    name: str
    mean: float
    std: float


class Importances(_View):
    """The manifest's `importances`: permutation importances on the test split."""

    method: str
    metric: str
    repeats: int
    seed: int
    rows: int
    features: list[FeatureImportance]


class SliceResult(_View):
    column: str
    value: str
    count: int
    metrics: dict[str, float]


class Slices(_View):
    """The manifest's `slices`: metrics per value of the slice columns, and the largest gap per metric."""

    columns: list[str]
    metric: str
    slices: list[SliceResult]
    gaps: dict[str, float] = {}


@dataclass(frozen=True)
class TriggerRef:
    """A parsed lineage trigger: `manual`, or `<kind>:<namespace>/<monitor>#<check>` for a retrain."""

    kind: str
    source: str | None = None
    check: int | None = None


def parse_trigger(trigger: str | None) -> TriggerRef:
    """`drift:ns/mon#12` -> TriggerRef("drift", "ns/mon", 12); anything without a colon is its own kind."""
    text = trigger or "manual"
    kind, sep, rest = text.partition(":")
    if not sep:
        return TriggerRef(kind)
    source, _, check = rest.partition("#")
    return TriggerRef(kind, source or None, int(check) if check.isdigit() else None)


def trigger_report_path(trigger: TriggerRef) -> str | None:
    """Where in the store the HTML report of the check behind a retrain is (drift checks), else None."""
    if trigger.kind != "drift" or trigger.source is None or trigger.check is None:
        return None
    namespace, sep, monitor = trigger.source.partition("/")
    if not sep:
        return None
    from gyre.drift.monitor_run import check_html_path

    return check_html_path(namespace, monitor, trigger.check)


@dataclass(frozen=True)
class CardInputs:
    """Everything a card shows. Build it with `from_manifest_json`."""

    manifest: ModelManifest
    digest: str | None = None
    """sha256 of manifest.json's bytes: the model's digest."""
    importances: Importances | None = None
    slices: Slices | None = None
    unreadable: tuple[str, ...] = ()
    """Manifest keys present but not in the shape this card reads."""
    card: CardSpec | None = None
    gates: Sequence[Gate] | None = None
    trigger_report_uri: str | None = None
    """The HTML report of the check that caused the retrain, when it exists."""
    gates_verdict: GatesVerdict | None = None
    """The verdict the run was validated with (spec.gates and slice gates); None: spec.gates on the metrics."""

    @classmethod
    def from_manifest_json(
        cls,
        data: bytes | str,
        *,
        spec: TrainingRunSpec | None = None,
        trigger_report_uri: str | None = None,
        gates_verdict: GatesVerdict | None = None,
    ) -> CardInputs:
        """Parse manifest.json (its exact bytes give the digest); raises pydantic.ValidationError when it is not
        a model manifest."""
        raw = data.encode() if isinstance(data, str) else data
        doc: dict[str, Any] = json.loads(raw)
        views: dict[str, Any] = {}
        unreadable = []
        for key, model in (("importances", Importances), ("slices", Slices)):
            value = doc.pop(key, None)
            if value is None:
                continue
            try:
                views[key] = model.model_validate(value)
            except ValidationError:
                unreadable.append(key)
        return cls(
            manifest=ModelManifest.model_validate(doc),
            digest=hashlib.sha256(raw).hexdigest(),
            importances=views.get("importances"),
            slices=views.get("slices"),
            unreadable=tuple(unreadable),
            card=spec.card if spec else None,
            gates=spec.gates if spec else None,
            trigger_report_uri=trigger_report_uri,
            gates_verdict=gates_verdict,
        )


@dataclass(frozen=True)
class Table:
    """A table of text cells; `row_headers` makes the first cell of each row a header (confusion matrix)."""

    header: list[str]
    rows: list[list[str]]
    row_headers: bool = False
    highlight: list[tuple[int, int]] = field(default_factory=list)
    """(row, column) cells to emphasise: the confusion matrix's diagonal."""


Block = str | Table
"""A paragraph of text, or a table."""


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: list[Block]
    link: tuple[str, str] | None = None
    """(text, href) shown after the blocks."""


def _n(value: float | None) -> str:
    return fmt_number(value, 4)


def _intended_use(inputs: CardInputs) -> Section:
    card = inputs.card
    blocks: list[Block] = [
        card.intended_use if card and card.intended_use else "Not stated (set spec.card.intendedUse)."
    ]
    blocks.append("Limitations: " + (card.limitations if card and card.limitations else "not stated."))
    blocks.append("Owners: " + (", ".join(card.owners) if card and card.owners else "not stated."))
    return Section("intended-use", "Intended use", blocks)


def _data(m: ModelManifest) -> Section:
    blocks: list[Block] = []
    ds = m.dataset
    if ds is None:
        blocks.append("No dataset recorded (an imported model).")
    else:
        version = str(ds.version) if ds.version is not None else "n/a"
        blocks.append(
            Table(
                ["dataset", "version", "fingerprint", "data"],
                [[ds.name or "n/a", version, ds.fingerprint, ds.uri]],
            )
        )
    ev = m.evaluation
    if ev is not None:
        blocks.append(
            f"{ev.rows_train + ev.rows_test} rows with a target: {ev.rows_train} to train, "
            f"{ev.rows_test} held out to test."
        )
    summary = m.data_summary
    rows = []
    described = {c.name: c for c in summary.columns} if summary else {}
    for feature in m.features:
        c = described.get(feature.name)
        rows.append(_column_row(feature.name, "feature", feature.kind.value, feature.dtype, c))
    rows.append(_column_row(m.target.name, "target", "", "", described.get(m.target.name)))
    blocks.append(
        Table(
            [
                "column",
                "role",
                "kind",
                "dtype",
                "missing",
                "distinct",
                "mean",
                "std",
                "min",
                "max",
                "top values",
            ],
            rows,
        )
    )
    if summary is None:
        blocks.append(f"Profile summary: {NOT_COMPUTED}.")
    else:
        blocks.append(f"Profile of all {summary.rows} rows of the dataset version, before the split.")
    return Section("data", "Data", blocks)


def _column_row(name: str, role: str, kind: str, dtype: str, c: Any) -> list[str]:
    if c is None:
        return [name, role, kind, dtype, *["n/a"] * 7]
    return [
        name,
        role,
        kind or c.kind.value,
        dtype,
        f"{c.missing_rate:.1%}",
        str(c.distinct),
        _n(c.mean) if c.mean is not None else "",
        _n(c.std) if c.std is not None else "",
        _n(c.min) if c.min is not None else "",
        _n(c.max) if c.max is not None else "",
        ", ".join(c.top or []),
    ]


def _training(m: ModelManifest) -> Section:
    facts = [
        ["estimator", m.estimator],
        ["task", m.task],
        ["seed", str(m.seed)],
        ["image", m.image or "n/a"],
        ["trained at", f"{m.created_at:%Y-%m-%d %H:%M:%S %Z}".strip()],
    ]
    params = [[k, json.dumps(v, sort_keys=True)] for k, v in sorted(m.params.items())]
    blocks: list[Block] = [Table(["", ""], facts)]
    blocks.append(
        Table(["parameter", "value"], params) if params else "Parameters: the estimator's defaults."
    )
    if m.transforms:
        blocks.append("Feature transforms: " + json.dumps(m.transforms, sort_keys=True))
    blocks.append(Table(["library", "version"], [[k, v] for k, v in sorted(m.libraries.items())]))
    return Section("training", "Training", blocks)


def _metrics(m: ModelManifest) -> Section:
    ev = m.evaluation
    level = f"{ev.confidence_level:.0%}" if ev else "95%"
    rows = []
    for name, value in m.metrics.items():
        interval = ev.intervals.get(name) if ev else None
        ci = f"[{_n(interval.low)}, {_n(interval.high)}]" if interval else NOT_COMPUTED
        better = "lower" if name in LOWER_IS_BETTER else "higher"
        rows.append([name, _n(value), ci, better])
    blocks: list[Block] = [Table(["metric", "value", f"{level} interval", "better"], rows)]
    if ev is None:
        blocks.append(f"Confidence intervals: {NOT_COMPUTED}.")
    else:
        blocks.append(
            f"On the {ev.rows_test} held-out test rows. Intervals: percentile bootstrap, {ev.resamples} resamples "
            f"of the test rows' predictions, seed {ev.seed}."
        )
    return Section("metrics", "Metrics", blocks)


def _per_class(m: ModelManifest) -> Section | None:
    if m.task != "classification":
        return None
    ev = m.evaluation
    if ev is None or ev.per_class is None or ev.confusion_matrix is None or ev.classes is None:
        return Section(
            "per-class", "Per-class metrics and confusion matrix", [f"Per-class metrics: {NOT_COMPUTED}."]
        )
    per_class = Table(
        ["class", "precision", "recall", "f1", "support"],
        [[c.label, _n(c.precision), _n(c.recall), _n(c.f1), str(c.support)] for c in ev.per_class],
    )
    matrix = Table(
        ["true / predicted", *ev.classes],
        [[label, *(str(v) for v in row)] for label, row in zip(ev.classes, ev.confusion_matrix, strict=True)],
        row_headers=True,
        highlight=[(i, i + 1) for i in range(len(ev.classes))],
    )
    return Section(
        "per-class",
        "Per-class metrics and confusion matrix",
        [per_class, "Confusion matrix (rows: true class, columns: predicted class):", matrix],
    )


def _importances(inputs: CardInputs) -> Section:
    imp = inputs.importances
    if imp is None:
        note = "present but unreadable" if "importances" in inputs.unreadable else NOT_COMPUTED
        return Section("importances", "Feature importances", [f"Feature importances: {note}."])
    ranked = sorted(imp.features, key=lambda f: -f.mean)
    return Section(
        "importances",
        "Feature importances",
        [
            f"{imp.method} importances: the drop in {imp.metric} when a feature is shuffled, over {imp.repeats} "
            f"repeats on {imp.rows} test rows (seed {imp.seed}).",
            Table(["feature", "mean", "std"], [[f.name, _n(f.mean), _n(f.std)] for f in ranked]),
        ],
    )


def _slices(inputs: CardInputs) -> Section:
    sl = inputs.slices
    if sl is None:
        note = "present but unreadable" if "slices" in inputs.unreadable else NOT_COMPUTED
        return Section("slices", "Slices", [f"Per-slice metrics: {note}."])
    names = list(dict.fromkeys(name for s in sl.slices for name in s.metrics))
    rows = [[s.column, s.value, str(s.count), *(_n(s.metrics.get(n)) for n in names)] for s in sl.slices]
    blocks: list[Block] = [
        f"Metrics per value of {', '.join(sl.columns)} (primary metric {sl.metric}).",
        Table(["column", "value", "count", *names], rows),
    ]
    if sl.gaps:
        blocks.append(
            Table(["metric", "largest gap between slices"], [[k, _n(v)] for k, v in sl.gaps.items()])
        )
    return Section("slices", "Slices", blocks)


def _gates(inputs: CardInputs) -> Section:
    verdict = inputs.gates_verdict or evaluate_gates(inputs.gates, inputs.manifest.metrics)
    if not verdict.results:
        return Section("gates", "Gates", ["No gates declared: the model is promotable on any metrics."])
    rows = []
    for r in verdict.results:
        # Slice gates (gyre.api.gates.evaluate_slice_gates) bound one slice's metric or the gap between slices.
        on_slices = r.message.startswith("slice gate")
        gap = on_slices and "maxGap" in r.message
        bounds = ", ".join(
            f"{'maxGap' if gap else word} {bound:g}"
            for word, bound in (("min", r.gate.min), ("max", r.gate.max))
            if bound is not None
        )
        metric = (
            f"{r.gate.metric} ({'gap between slices' if gap else 'any slice'})"
            if on_slices
            else r.gate.metric
        )
        rows.append([metric, bounds, _n(r.value), "passed" if r.passed else "failed"])
    outcome = (
        "All gates passed: the model is promotable."
        if verdict.passed
        else f"Gates failed: {verdict.message}."
    )
    return Section("gates", "Gates", [outcome, Table(["metric", "bound", "value", "outcome"], rows)])


def _lineage(inputs: CardInputs) -> Section:
    m = inputs.manifest
    trigger = parse_trigger(m.lineage.trigger)
    facts = [["training run", m.lineage.training_run or "n/a"]]
    if m.lineage.trial is not None:
        facts.append(["search trial", str(m.lineage.trial)])
    facts.append(["trigger", m.lineage.trigger])
    if trigger.source is not None:
        facts.append([f"{trigger.kind} monitor", trigger.source])
    if trigger.check is not None:
        facts.append(["check", str(trigger.check)])
    if m.dataset is not None:
        facts.append(["dataset fingerprint", m.dataset.fingerprint])
    facts.append(["model digest (sha256 of manifest.json)", inputs.digest or "n/a"])
    onnx = m.onnx.status + (f" ({m.onnx.reason})" if m.onnx.reason else "")
    facts.append(["ONNX twin", onnx])
    blocks: list[Block] = []
    if trigger.source is not None:
        blocks.append(
            f"Retrained because the {trigger.kind} check"
            + (f" #{trigger.check}" if trigger.check is not None else "")
            + f" of {trigger.source} asked for it."
        )
    blocks.append(Table(["", ""], facts))
    link = ("the check report", inputs.trigger_report_uri) if inputs.trigger_report_uri else None
    if trigger.source is not None and link is None:
        blocks.append("The check report was not found in the artifact store.")
    return Section("lineage", "Lineage", blocks, link=link)


def _title(m: ModelManifest) -> str:
    return f"Model card: {m.lineage.training_run or m.name}"


def card_sections(inputs: CardInputs) -> list[Section]:
    """The card's sections, in order: intended use, data, training, metrics, per-class (classifiers),
    importances, slices, gates, lineage."""
    m = inputs.manifest
    sections = [_intended_use(inputs), _data(m), _training(m), _metrics(m)]
    per_class = _per_class(m)
    if per_class is not None:
        sections.append(per_class)
    sections.extend([_importances(inputs), _slices(inputs), _gates(inputs), _lineage(inputs)])
    return sections


# Markdown: text is shown literally. CommonMark passes raw HTML through only where `<` opens a tag, comment or
# declaration, and turns `&name;` into a character: exactly those are backslash-escaped, so `0.9 < 1` stays as it
# is and `<script>` is text. Inside tables, pipes are escaped and newlines folded.
_MD_MARKUP = re.compile(r"<(?=[A-Za-z/!?])|&(?=#?\w+;)")


def _md(text: str) -> str:
    return _MD_MARKUP.sub(lambda match: "\\" + match.group(0), text)


def _md_cell(text: str) -> str:
    return re.sub(r"\s+", " ", _md(text)).replace("|", "\\|").replace("`", "\\`")


def _md_table(t: Table) -> str:
    header = t.header if any(t.header) else ["", ""]
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows)
    return "\n".join(lines)


def render_markdown(inputs: CardInputs) -> str:
    """The card as Markdown (`card.md`)."""
    m = inputs.manifest
    parts = [
        f"# {_md(_title(m))}",
        f"{m.estimator} ({m.task}) predicting `{_md_cell(m.target.name)}`, trained {m.created_at:%Y-%m-%d}.",
    ]
    for s in card_sections(inputs):
        parts.append(f"## {s.title}")
        parts.extend(_md_table(b) if isinstance(b, Table) else _md(b) for b in s.blocks)
        if s.link is not None:
            parts.append(f"[{_md(s.link[0])}](<{s.link[1].replace('>', '%3E')}>)")
    return "\n\n".join(parts) + "\n"


_CSS = """
h2{margin:22px 0 4px}section{border-top:1px solid #e5e5e5;padding:8px 0}
p.text{white-space:pre-wrap}
td.num{font-variant-numeric:tabular-nums}
table.matrix td{text-align:right;min-width:3em}table.matrix td.diag{background:#e3f1e6;font-weight:600}
.pass{color:#1e7b34;font-weight:600}.fail{color:#b3261e;font-weight:600}
"""


def _html_table(t: Table) -> str:
    cls = ' class="matrix"' if t.row_headers else ""
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header) if any(t.header) else ""
    body = []
    marked = set(t.highlight)
    for i, row in enumerate(t.rows):
        cells = []
        for j, cell in enumerate(row):
            if j == 0 and t.row_headers:
                cells.append(f"<th>{escape(cell)}</th>")
                continue
            css = "diag" if (i, j) in marked else {"passed": "pass", "failed": "fail"}.get(cell, "")
            cells.append(f'<td class="{css}">{escape(cell)}</td>' if css else f"<td>{escape(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table{cls}>" + (f"<tr>{head}</tr>" if head else "") + "".join(body) + "</table>"


def _safe_href(uri: str) -> str | None:
    # Only links that cannot run anything: the check report lives in the store (s3://, gs://, file://, https://).
    return uri if re.match(r"^(https?|s3|gs|file)://", uri) else None


def render_html(inputs: CardInputs) -> str:
    """The card as one self-contained HTML page (`card.html`): inline CSS, no scripts, nothing fetched."""
    m = inputs.manifest
    title = _title(m)
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<div class="summary">{escape(m.estimator)} ({escape(m.task)}) predicting '
        f"<code>{escape(m.target.name)}</code>, trained {m.created_at:%Y-%m-%d %H:%M} UTC</div>",
    ]
    for s in card_sections(inputs):
        parts.append(f'<section id="{s.id}"><h2>{escape(s.title)}</h2>')
        for b in s.blocks:
            parts.append(_html_table(b) if isinstance(b, Table) else f'<p class="text">{escape(b)}</p>')
        if s.link is not None:
            href = _safe_href(s.link[1])
            text = escape(s.link[0])
            parts.append(
                f'<p><a href="{escape(href)}">{text}</a></p>'
                if href
                else f"<p>{text}: {escape(s.link[1])}</p>"
            )
        parts.append("</section>")
    return html_page(title, "".join(parts), css=_CSS)


def write_card(directory: str | Path, inputs: CardInputs) -> tuple[str, str]:
    """Write card.md and card.html into `directory` (the model directory); returns their file names."""
    root = Path(directory)
    (root / CARD_MARKDOWN).write_text(render_markdown(inputs), encoding="utf-8")
    (root / CARD_HTML).write_text(render_html(inputs), encoding="utf-8")
    return CARD_MARKDOWN, CARD_HTML
