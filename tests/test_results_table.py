"""scripts/results_table.py: results files in, a pass^k markdown table out."""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "scripts" / "results_table.py"
_spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
results_table = sys.modules["results_table"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(results_table)


@pytest.fixture
def server(busy_server):
    """These tests send hundreds of requests: they get a server of their own (see conftest.busy_server)."""
    return busy_server


def test_pass_hat_k_is_the_share_of_k_trial_subsets_that_all_succeed():
    for n in range(1, 7):
        for c in range(n + 1):
            outcomes = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(outcomes, k))
                assert results_table.pass_hat_k(n, c, k) == pytest.approx(sum(all(s) for s in subsets) / len(subsets))
    assert results_table.pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)
    assert results_table.pass_hat_k(3, 3, 4) is None  # more trials needed than were run
    with pytest.raises(ValueError):
        results_table.pass_hat_k(2, 3, 1)
    with pytest.raises(ValueError):
        results_table.pass_hat_k(2, 1, 0)


def test_table_from_inference_results_files(server, tmp_path, monkeypatch):
    import inference

    for variable in ("HF_TOKEN", "OPENAI_API_KEY", "API_KEY", "TASKS", "RESULTS_PATH"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ENV_BASE_URL", server.url)
    runs = [tmp_path / f"run{i}.json" for i in (1, 2, 3)]
    for path in runs[:2]:
        assert inference.main(["--tasks", "easy_classify,medium_kb_reply", "--results", str(path)]) == 0
    # A third trial in which medium_kb_reply failed.
    third = json.loads(runs[0].read_text())
    medium = next(r for r in third["results"] if r["task_id"] == "medium_kb_reply")
    medium.update(success=False, grade=0.5)
    runs[2].write_text(json.dumps(third))

    table = results_table.markdown_table(results_table.load_results(runs), max_k=4)

    assert table.splitlines() == [
        "| model | task | trials | mean grade | pass^1 | pass^2 | pass^3 | pass^4 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        "| scripted | easy_classify | 3 | 1.000 | 1.000 | 1.000 | 1.000 | – |",
        "| scripted | medium_kb_reply | 3 | 0.833 | 0.667 | 0.333 | 0.000 | – |",
        "| **scripted** | **all 2 tasks** | 3 | 0.917 | 0.833 | 0.667 | 0.500 | – |",
    ]
    cli = subprocess.run([sys.executable, str(SCRIPT), *map(str, runs), "--k", "4"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and cli.stdout == table


def test_models_splits_and_bad_files(tmp_path):
    rows = [
        {"task_id": "hard_mixed_queue", "split": "eval", "model": "m-a", "grade": 0.9, "success": True},
        {"task_id": "hard_mixed_queue", "split": "eval", "model": "m-a", "grade": 0.4, "success": False},
        {"task_id": "hard_mixed_queue", "split": "eval", "model": "m-b", "grade": 1.0, "success": True},
    ]
    table = results_table.markdown_table(rows, max_k=2)
    assert "| m-a | hard_mixed_queue | eval | 2 | 0.650 | 0.500 | 0.000 |" in table
    assert "| m-b | hard_mixed_queue | eval | 1 | 1.000 | 1.000 | – |" in table

    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "results"}')
    cli = subprocess.run([sys.executable, str(SCRIPT), str(bad)], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2 and "not a results file" in cli.stderr
