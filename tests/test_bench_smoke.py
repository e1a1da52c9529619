"""One quick run of the benchmark harness, to keep it working (no timing is asserted here)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_harness_prints_a_table_and_writes_json(tmp_path):
    out_json = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--no-cctools", "--no-plots", "--json",
                           str(out_json), "throughput", "latency", "transfer", "functions"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "raw sh -c true, 2-way" in done.stdout and "raw ZeroMQ, file to file" in done.stdout
    results = json.loads(out_json.read_text())
    assert results["machine"]["cores"] >= 1 and results["machine"]["fastio"] in ("cython", "python")
    figures = {(r["workload"], r["figure"]) for r in results["rows"]}
    assert ("throughput", "true x50, 2 worker(s)") in figures
    assert ("latency", "round trip median") in figures
    assert any(w == "transfer" and f.endswith(" in") for w, f in figures)
    for row in results["rows"]:
        if row["figure"] == "cache hit overhead":  # a difference of two medians: below the noise it may be < 0
            assert abs(row["value"]) < 1, row
            continue
        assert row["value"] > 0, row
        if row["reference_value"]:
            assert row["ratio"] == row["value"] / row["reference_value"]
    assert any("CCTools" in note for note in results["notes"])
