"""The HTML model card rendered by a real browser (headless Chromium, tests/browser.py): the matrix, metrics and
user text as a person sees them, nothing fetched, no user script run."""

from __future__ import annotations

from pathlib import Path

from card_manifests import IMPORTANCES, SLICES, classifier_manifest, manifest_bytes

from browser import DevTools, page_errors
from gyre.api.trainingrun import TrainingRunSpec
from gyre.governance.card import CardInputs, render_html

HOSTILE = (
    '<script>window.pwned = 1</script><img src="https://example.invalid/x.png" onerror="window.pwned = 2">'
    '<link rel="stylesheet" href="https://example.invalid/s.css">'
)


def _card_page(tmp_path: Path) -> Path:
    spec = TrainingRunSpec.model_validate(
        {
            "datasetRef": {"name": "iris"},
            "estimator": {"kind": "RandomForestClassifier"},
            "gates": [{"metric": "accuracy", "min": 0.85}],
            "card": {"intendedUse": "Sorting irises. " + HOSTILE, "owners": ["ml-team"]},
        }
    )
    inputs = CardInputs.from_manifest_json(
        manifest_bytes(
            classifier_manifest("drift:ml/iris-monitor#12"), importances=IMPORTANCES, slices=SLICES
        ),
        spec=spec,
        trigger_report_uri="https://reports.invalid/drift/ml/iris-monitor/00000012.html",
    )
    page = tmp_path / "card.html"
    page.write_text(render_html(inputs), encoding="utf-8")
    return page


def test_the_card_renders_in_chromium_with_its_matrix_and_metrics_and_fetches_nothing(
    browser: DevTools, tmp_path: Path
) -> None:
    page = _card_page(tmp_path)
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=page.as_uri())
    browser.wait_for("Page.loadEventFired")
    seen = browser.evaluate(
        """JSON.stringify({
        text: document.body.innerText,
        matrix: [...document.querySelectorAll('table.matrix tr')].slice(1).map(
            r => [...r.querySelectorAll('td')].map(c => Number(c.textContent))),
        diagonal: [...document.querySelectorAll('table.matrix td.diag')].map(c => Number(c.textContent)),
        sections: [...document.querySelectorAll('section')].map(s => s.id),
        elements: document.querySelectorAll('script,link,img,iframe,object,embed').length,
        pwned: typeof window.pwned,
        width: document.querySelector('table.matrix').getBoundingClientRect().width})"""
    )
    assert seen["matrix"] == [[10, 0, 0], [0, 9, 1], [0, 2, 8]]
    assert seen["diagonal"] == [10, 9, 8] and seen["width"] > 100
    assert seen["sections"] == [
        "intended-use",
        "data",
        "training",
        "metrics",
        "per-class",
        "importances",
        "slices",
        "gates",
        "lineage",
    ]
    text = seen["text"]
    for shown in (
        "accuracy\t0.9000\t[0.7667, 1.0000]",
        "versicolor\t0.8182\t0.9000\t0.8571\t10",
        "petal length\t0.3456\t0.0210",
        "region\tnorth\t17\t0.9412",
        "accuracy\tmin 0.85\t0.9000\tpassed",
        "Retrained because the drift check #12 of ml/iris-monitor asked for it.",
        HOSTILE,  # the user's markup, shown as the text it is
    ):
        assert shown in text, shown
    assert seen["elements"] == 0 and seen["pwned"] == "undefined"
    requested = [
        e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"
    ]
    assert requested == [page.as_uri()]
    assert page_errors(browser.events) == []
