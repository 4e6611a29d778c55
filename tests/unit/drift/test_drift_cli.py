"""`gyre drift check` on files, through the real `gyre` entry point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gyre.cli import main
from gyre.drift.profile import build_profile


@pytest.fixture
def tables(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 2000),
            "plan": rng.choice(["free", "pro", "team"], 2000),
            "churn": rng.integers(0, 2, 2000),
        }
    )
    cur = pd.DataFrame(
        {
            "age": rng.normal(55, 10, 800),
            "plan": rng.choice(["free", "pro", "team"], 800),
            "churn": rng.integers(0, 2, 800),
        }
    )
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_parquet(tmp_path / "cur.parquet")
    return tmp_path / "ref.csv", tmp_path / "cur.parquet"


def test_check_prints_a_json_report(tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = tables
    assert main(["drift", "check", "--reference", str(ref), "--current", str(cur)]) == 0
    report = json.loads(capsys.readouterr().out)
    by_column = {c["column"]: c for c in report["columns"]}
    assert set(by_column) == {"age", "plan", "churn"}
    for col in by_column.values():
        assert {"column", "method", "score", "threshold", "drifted", "pvalue", "effect"} <= set(col)
    assert by_column["age"]["method"] == "ks_welch" and by_column["age"]["drifted"] is True
    assert by_column["plan"]["drifted"] is False
    assert report["driftShare"] == pytest.approx(1 / 3)
    assert report["verdict"] == "no_drift"


def test_check_with_preset_evidently_uses_evidentlys_tests(
    tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ref, cur = tables
    assert (
        main(["drift", "check", "--reference", str(ref), "--current", str(cur), "--preset", "evidently"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    methods = {c["column"]: c["method"] for c in report["columns"]}
    assert methods == {"age": "wasserstein", "plan": "jensenshannon", "churn": "jensenshannon"}
    assert report["preset"] == "evidently"


def test_check_html_writes_a_self_contained_page_with_one_chart_per_feature(
    tables: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, cur = tables
    page = tmp_path / "report.html"
    assert main(["drift", "check", "--reference", str(ref), "--current", str(cur), "--html", str(page)]) == 0
    json.loads(capsys.readouterr().out)  # the JSON report still goes to stdout
    html = page.read_text()
    assert html.count('<svg class="chart"') == 3
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    # Features sorted by effect: the shifted age first.
    assert html.index('id="f-age"') < html.index('id="f-plan"')


def test_check_writes_output_and_accepts_a_profile(
    tables: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, cur = tables
    profile_path = tmp_path / "profile.json"
    profile_path.write_text(build_profile(pd.read_csv(ref)).to_json())
    out = tmp_path / "report.json"
    args = ["drift", "check", "--reference", str(profile_path), "--current", str(cur), "--output", str(out)]
    assert main([*args, "--drift-share", "0.3", "--method", "plan=psi:0.2"]) == 0
    report = json.loads(out.read_text())
    assert report["verdict"] == "drift"
    assert {c["column"]: c["method"] for c in report["columns"]}["plan"] == "psi"
    assert "drift: 1/3 columns drifted" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "plan=ks"], "needs a numeric column"),
        (["--method", "plan"], "COLUMN=METHOD"),
        (["--drift-share", "0"], "drift_share"),
    ],
)
def test_bad_options_exit_non_zero(
    tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    ref, cur = tables
    assert main(["drift", "check", "--reference", str(ref), "--current", str(cur), *extra]) == 2
    assert message in capsys.readouterr().err


def test_bad_files_exit_non_zero(
    tables: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref, cur = tables
    assert main(["drift", "check", "--reference", str(tmp_path / "nope.csv"), "--current", str(cur)]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"hello": 1}')
    assert main(["drift", "check", "--reference", str(tmp_path / "bad.json"), "--current", str(cur)]) == 2
    assert "not a Gyre reference profile" in capsys.readouterr().err
    pd.DataFrame({"age": [1.0, 2.0]}).to_csv(tmp_path / "narrow.csv", index=False)
    assert main(["drift", "check", "--reference", str(ref), "--current", str(tmp_path / "narrow.csv")]) == 2
    assert "missing reference columns ['plan', 'churn']" in capsys.readouterr().err
    (tmp_path / "cur.txt").write_text("x")
    assert main(["drift", "check", "--reference", str(ref), "--current", str(tmp_path / "cur.txt")]) == 2
    assert "unsupported file type" in capsys.readouterr().err


def test_a_parquet_reference_is_profiled_column_by_column_to_the_same_profile(tmp_path: Path) -> None:
    from gyre.drift.cli import load_reference

    rng = np.random.default_rng(12)
    n = 3000
    late_third = np.where(np.arange(n) < 2000, rng.integers(0, 2, n), 2)  # two values in the first 1,000 only
    frame = pd.DataFrame(
        {
            "x": rng.normal(0, 1, n),
            "n": rng.poisson(2, n),
            "c": rng.choice([f"v{i}" for i in range(300)], n),
            "b": rng.random(n) < 0.3,
            "flag": rng.integers(0, 2, n),
            "flag_nan": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 2, n).astype(float)),
            "late": late_third,
            "yesno": rng.choice(["yes", "no"], n),
            "nullable": pd.array(rng.integers(0, 50, n), dtype="Int64"),
            "inf": rng.normal(0, 1, n),
            "cat_int": pd.Categorical(rng.integers(0, 5, n)),
            "cat_str": pd.Categorical(rng.choice(["lo", "hi"], n)),
            "fcat": rng.choice([0.5, 1.0, 2.0], n),
        }
    )
    frame.loc[::7, "x"] = np.nan
    frame.loc[::9, ["nullable", "c", "yesno"]] = None
    frame.loc[::11, "inf"] = np.inf
    frame.index = pd.Index(np.arange(n) * 3, name="row")  # stored as a column; pandas reads it as the index
    frame.to_parquet(tmp_path / "ref.parquet", row_group_size=1000)
    streamed = load_reference(tmp_path / "ref.parquet")
    whole = build_profile(frame)
    assert streamed.model_dump(exclude={"created_at"}) == whole.model_dump(exclude={"created_at"})


def test_a_parquet_window_read_with_arrow_counts_as_its_pandas_frame(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from gyre.drift.check import CurrentData, check

    rng = np.random.default_rng(14)
    n = 3000

    def frame() -> pd.DataFrame:
        f = pd.DataFrame(
            {
                "x": rng.normal(0, 1, n),
                "i": pd.array(rng.integers(0, 30, n), dtype="Int64"),
                "flag": rng.random(n) < 0.3,
                "s": rng.choice(["a", "b", "c", "d"], n),
                "cat": pd.Categorical(rng.choice(["lo", "mid", "hi"], n)),
                "fcat": rng.choice([1.0, 2.0, 2.5, np.nan], n),
                "icat": rng.integers(0, 4, n),
                "mixed": rng.choice(["1", "2", "x"], n),
            }
        )
        f.loc[::11, "x"] = np.inf
        f.loc[::5, "x"] = np.nan
        f.loc[::13, "i"] = pd.NA
        f.loc[::9, "s"] = None
        return f

    kinds = {"x": "numeric", "i": "numeric", "flag": "binary", "s": "categorical", "cat": "categorical"}
    kinds |= {"fcat": "categorical", "icat": "categorical", "mixed": "categorical"}
    profile = build_profile(frame(), kinds)
    window = frame()
    window.to_parquet(tmp_path / "cur.parquet", row_group_size=700)  # several chunks per column
    from_pandas, from_arrow = CurrentData(profile), CurrentData(profile)
    from_pandas.add_frame(pd.read_parquet(tmp_path / "cur.parquet"))
    from_arrow.add_table(pq.read_table(tmp_path / "cur.parquet"))
    for name, kind in kinds.items():
        assert from_arrow.missing(name) == from_pandas.missing(name), name
        if kind == "numeric":
            np.testing.assert_array_equal(from_arrow.numeric(name), from_pandas.numeric(name))
        else:
            assert from_arrow.category_counts(name) == from_pandas.category_counts(name), name
    assert check(profile, from_arrow).model_dump(exclude={"checked_at"}) == check(
        profile, from_pandas
    ).model_dump(exclude={"checked_at"})


def test_a_large_check_from_a_profile_and_a_parquet_window_imports_neither_pandas_nor_scipy(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    rng = np.random.default_rng(15)

    def table(n: int, shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {"x": rng.normal(shift, 1, n), "n": rng.poisson(3, n), "c": rng.choice(["a", "b", "c"], n)}
        )

    # Sizes where KS takes its limiting law (a stratified reference sample, effective size above 10,000).
    (tmp_path / "profile.json").write_text(build_profile(table(60_000, 0.0)).to_json())
    table(20_000, 0.2).to_parquet(tmp_path / "cur.parquet")
    argv = [
        "drift",
        "check",
        "--reference",
        str(tmp_path / "profile.json"),
        "--current",
        str(tmp_path / "cur.parquet"),
    ]
    argv += ["--output", str(tmp_path / "r.json")]
    code = f"import sys; from gyre.cli import main; main({argv!r}); print(' '.join(sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(run.stdout.split())
    assert "gyre.drift.check" in modules
    assert not {"pandas", "scipy"} & modules
    assert json.loads((tmp_path / "r.json").read_text())["driftedColumns"] == ["x"]
