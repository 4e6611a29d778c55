"""The model card renderer: every section from known manifest values, user text kept as text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from card_manifests import IMPORTANCES, SLICES, classifier_manifest, manifest_bytes

from gyre.api.trainingrun import TrainingRunSpec
from gyre.governance.card import (
    NOT_COMPUTED,
    CardInputs,
    card_sections,
    parse_trigger,
    render_html,
    render_markdown,
    trigger_report_path,
)


def _spec(**extra: object) -> TrainingRunSpec:
    return TrainingRunSpec.model_validate(
        {"datasetRef": {"name": "iris"}, "estimator": {"kind": "RandomForestClassifier"}, **extra}
    )


def _inputs(*, spec: TrainingRunSpec | None = None, trigger: str = "manual", **extra: object) -> CardInputs:
    return CardInputs.from_manifest_json(manifest_bytes(classifier_manifest(trigger), **extra), spec=spec)


class _Text(HTMLParser):
    """The text a browser would show, and every tag it would build."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Text:
    parser = _Text()
    parser.feed(page)
    return parser


def test_the_markdown_card_shows_the_data_training_metrics_intervals_and_confusion_matrix() -> None:
    md = render_markdown(_inputs())
    assert md.startswith("# Model card: ml/iris-rf\n")
    assert "| iris | 3 | sha256:" + "ab" * 32 + " | s3://bucket/datasets/ml/iris/ab/data.parquet |" in md
    assert "150 rows with a target: 120 to train, 30 held out to test." in md
    assert "| sepal width | feature | numeric | number | 2.0% | 23 | 3.0573 |" in md
    assert (
        "| species | target | categorical |  | 0.0% | 3 |" in md and "setosa, versicolor, virginica |" in md
    )
    assert "| estimator | RandomForestClassifier |" in md and "| image | registry.example/gyre:1.2.3 |" in md
    assert "| max_depth | 4 |" in md and "| n_estimators | 50 |" in md and "| scikit-learn | 1.9.1 |" in md
    assert "| accuracy | 0.9000 | [0.7667, 1.0000] | higher |" in md
    assert "percentile bootstrap, 200 resamples of the test rows' predictions, seed 7" in md
    assert "| versicolor | 0.8182 | 0.9000 | 0.8571 | 10 |" in md
    assert "| true / predicted | setosa | versicolor | virginica |" in md
    assert "| versicolor | 0 | 9 | 1 |" in md and "| virginica | 0 | 2 | 8 |" in md


def test_importances_and_slices_are_not_computed_when_the_manifest_has_no_such_key() -> None:
    md = render_markdown(_inputs())
    assert f"Feature importances: {NOT_COMPUTED}." in md
    assert f"Per-slice metrics: {NOT_COMPUTED}." in md


def test_importances_are_ranked_by_mean_with_their_method_and_seed() -> None:
    md = render_markdown(_inputs(importances=IMPORTANCES))
    assert "permutation importances: the drop in accuracy when a feature is shuffled, over 5 repeats" in md
    assert "(seed 42)" in md
    assert md.index("| petal length | 0.3456 | 0.0210 |") < md.index("| sepal width | 0.0123 | 0.0040 |")
    assert f"Feature importances: {NOT_COMPUTED}" not in md


def test_slices_show_counts_metrics_and_gaps() -> None:
    md = render_markdown(_inputs(slices=SLICES))
    assert "| region | north | 17 | 0.9412 |" in md and "| region | south | 13 | 0.8462 |" in md
    assert "| accuracy | 0.0950 |" in md
    assert f"Per-slice metrics: {NOT_COMPUTED}" not in md


def test_a_key_in_another_shape_is_reported_unreadable_and_the_card_still_renders() -> None:
    md = render_markdown(_inputs(importances={"method": "shap"}))
    assert "Feature importances: present but unreadable." in md


def test_gates_are_listed_with_their_bounds_values_and_outcomes() -> None:
    spec = _spec(gates=[{"metric": "accuracy", "min": 0.95}, {"metric": "f1_macro", "min": 0.8}])
    md = render_markdown(_inputs(spec=spec))
    assert "| accuracy | min 0.95 | 0.9000 | failed |" in md
    assert "| f1_macro | min 0.8 | 0.8997 | passed |" in md
    assert "Gates failed: accuracy 0.9 < min 0.95." in md
    assert "No gates declared" in render_markdown(_inputs())


def test_slice_gates_the_run_was_validated_with_are_listed_beside_the_metric_gates() -> None:
    from gyre.api.gates import combine_verdicts, evaluate_gates, evaluate_slice_gates
    from gyre.api.slices import SlicesStatus

    spec = _spec(
        gates=[{"metric": "accuracy", "min": 0.8}],
        slices={"columns": ["group"], "gates": [{"metric": "accuracy", "maxGap": 0.1, "min": 0.5}]},
    )
    assert spec.slices is not None
    measured = SlicesStatus.model_validate(
        {
            "columns": ["group"],
            "metric": "accuracy",
            "minCount": 30,
            "total": 2,
            "gaps": [
                {
                    "metric": "accuracy",
                    "column": "group",
                    "gap": 0.4,
                    "lowest": "b",
                    "lowestScore": 0.6,
                    "highest": "a",
                    "highestScore": 1.0,
                }
            ],
        }
    )
    verdict = combine_verdicts(
        evaluate_gates(spec.gates, {"accuracy": 0.9}), evaluate_slice_gates(spec.slices, measured)
    )
    md = render_markdown(
        CardInputs.from_manifest_json(
            manifest_bytes(classifier_manifest("manual")), spec=spec, gates_verdict=verdict
        )
    )
    assert "| accuracy | min 0.8 | 0.9000 | passed |" in md
    assert "| accuracy (gap between slices) | maxGap 0.1 | 0.4000 | failed |" in md
    assert "| accuracy (any slice) | min 0.5 | 0.6000 | passed |" in md
    assert "Gates failed: slice gate accuracy gap across group 0.4 > maxGap 0.1" in md


def test_intended_use_limitations_and_owners_come_from_spec_card() -> None:
    spec = _spec(
        card={"intendedUse": "Sorting irises.", "limitations": "Not for roses.", "owners": ["ml-team"]}
    )
    md = render_markdown(_inputs(spec=spec))
    assert "## Intended use\n\nSorting irises.\n\nLimitations: Not for roses.\n\nOwners: ml-team" in md
    assert "Not stated (set spec.card.intendedUse)." in render_markdown(_inputs())


def test_a_retrain_names_the_monitor_and_check_and_links_the_check_report() -> None:
    uri = "s3://bucket/drift/ml/iris-monitor/00000012.html"
    inputs = CardInputs.from_manifest_json(
        manifest_bytes(classifier_manifest("drift:ml/iris-monitor#12")), trigger_report_uri=uri
    )
    md = render_markdown(inputs)
    assert "Retrained because the drift check #12 of ml/iris-monitor asked for it." in md
    assert f"[the check report](<{uri}>)" in md
    assert f'<a href="{uri}">the check report</a>' in render_html(inputs)
    missing = render_markdown(_inputs(trigger="drift:ml/iris-monitor#12"))
    assert "The check report was not found in the artifact store." in missing


def test_triggers_parse_into_kind_source_and_check() -> None:
    assert parse_trigger("drift:ml/mon#12").check == 12
    assert parse_trigger("drift:ml/mon#12").source == "ml/mon"
    assert parse_trigger(None).kind == "manual" and parse_trigger("manual").source is None
    assert trigger_report_path(parse_trigger("drift:ml/mon#12")) == "drift/ml/mon/00000012.html"
    assert trigger_report_path(parse_trigger("manual")) is None


def test_the_digest_is_the_sha256_of_the_manifest_bytes() -> None:
    import hashlib

    data = manifest_bytes(classifier_manifest())
    assert CardInputs.from_manifest_json(data).digest == hashlib.sha256(data).hexdigest()


def test_regression_cards_have_no_per_class_section() -> None:
    manifest = classifier_manifest().model_copy(update={"task": "regression", "evaluation": None})
    inputs = CardInputs.from_manifest_json(manifest_bytes(manifest))
    assert [s.id for s in card_sections(inputs)] == [
        "intended-use",
        "data",
        "training",
        "metrics",
        "importances",
        "slices",
        "gates",
        "lineage",
    ]
    assert f"Confidence intervals: {NOT_COMPUTED}." in render_markdown(inputs)


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)> & | `pipe`'


def test_user_text_in_the_html_card_is_inert() -> None:
    spec = _spec(card={"intendedUse": HOSTILE, "owners": ["<b>bold</b>"]})
    page = render_html(_inputs(spec=spec))
    parsed = _parse(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "b" not in parsed.tags
    assert HOSTILE in "".join(parsed.text)
    assert "<b>bold</b>" in "".join(parsed.text)


def test_user_text_in_the_markdown_card_cannot_become_html() -> None:
    spec = _spec(card={"intendedUse": HOSTILE})
    md = render_markdown(_inputs(spec=spec))
    assert re.search(r"(?<!\\)<[A-Za-z/!?]", md) is None  # every tag opener is escaped
    assert "\\<script>alert" in md and "\\<img src=x" in md


def test_the_html_card_is_self_contained() -> None:
    page = render_html(_inputs(importances=IMPORTANCES, slices=SLICES))
    parsed = _parse(page)
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(parsed.tags)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "url(" not in page and "@import" not in page


@pytest.mark.parametrize("field", ["intendedUse", "limitations"])
def test_card_text_is_bounded(field: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        _spec(card={field: "x" * 4001})
    with pytest.raises(ValidationError, match="at least one of"):
        _spec(card={})
