"""`blindlink.match` gives the pairs and scores of `blindlink match`; `evaluate` its numbers."""

import numpy as np
import pytest

import blindlink
from conftest import JA_SCHEMA, SECRET, read_csv


@pytest.fixture(scope="module")
def clk_files(cli, ja_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("clks")
    (out / "schema.toml").write_text(JA_SCHEMA)
    (out / "key").write_bytes(SECRET)
    for side, name in (("a", "registry.csv"), ("b", "insurer.csv")):
        cli("encode", "--schema", out / "schema.toml", "--secret-file", out / "key",
            "--input", ja_data / name, "--output", out / f"{side}.json", "--no-progress")
    return out


def cli_pairs(cli, clk_files, tmp_path, *args):
    out = tmp_path / "pairs.csv"
    cli("match", "--a", clk_files / "a.json", "--b", clk_files / "b.json", "--output", out, *args)
    rows = read_csv(out)
    assert rows[0] == ["a_index", "b_index", "score"]
    return rows[1:]


def as_rows(result):
    return [[str(a), str(b), s] for a, b, s in zip(result.a_index, result.b_index, result.score)]


@pytest.mark.parametrize(
    "threshold, solver, options, cli_args",
    [
        (0.8, "greedy", {}, []),
        (0.7, "optimal", {}, ["--solver", "optimal"]),
        (0.75, "none", {}, ["--solver", "none"]),
        (0.6, "greedy", {"top_k": 2}, ["--top-k", "2"]),
        (0.7, "none", {"blocking": "lsh:bands=20,bits=24,seed=3"},
         ["--solver", "none", "--blocking", "lsh:bands=20,bits=24,seed=3"]),
    ],
)
def test_pairs_and_scores_equal_the_cli(cli, clk_files, tmp_path, threshold, solver, options, cli_args):
    want = cli_pairs(cli, clk_files, tmp_path, "--threshold", threshold, *cli_args)
    assert len(want) > 100
    a = blindlink.read_clks(clk_files / "a.json")
    b = blindlink.read_clks(clk_files / "b.json")
    for got in (
        blindlink.match(a, b, threshold, solver, **options),
        blindlink.match(clk_files / "a.json", str(clk_files / "b.json"), threshold, solver, threads=1, **options),
    ):
        assert got.a_index.dtype == np.int64 and got.score.dtype == np.float64
        rows = as_rows(got)
        assert [r[:2] for r in rows] == [w[:2] for w in want]
        # The CLI prints the shortest text that reads back as the same f64.
        assert [r[2] for r in rows] == [float(w[2]) for w in want]


def test_encode_then_match_in_python(cli, clk_files, tmp_path):
    data = blindlink.synth(persons=400, seed=5, locale="ja")
    a = blindlink.encode(data.a, JA_SCHEMA, SECRET)
    b = blindlink.encode(data.b, JA_SCHEMA, SECRET)
    want = cli_pairs(cli, clk_files, tmp_path, "--threshold", 0.8)
    assert as_rows(blindlink.match(a, b, 0.8))[:5] == [[w[0], w[1], float(w[2])] for w in want[:5]]


def test_errors(cli, clk_files, tmp_path):
    a = blindlink.read_clks(clk_files / "a.json")
    for threshold in (0.0, 1.5):
        with pytest.raises(blindlink.InputError) as e:
            blindlink.match(a, a, threshold)
        assert str(e.value) == f"threshold: dice threshold must be in (0, 1], got {threshold}" or \
            str(e.value).startswith("threshold: ")
    with pytest.raises(blindlink.InputError) as e:
        blindlink.match(a, a[:, :64], 0.8)
    assert str(e.value) == "filter lengths differ: a has 1024-bit filters, b has 512-bit filters"
    want = cli.error("match", "--a", clk_files / "a.json", "--b", clk_files / "b.json", "--threshold",
                     0.8, "--blocking", "lsh:bands=2", "--output", tmp_path / "p.csv")
    with pytest.raises(blindlink.InputError) as e:
        blindlink.match(a, a, 0.8, blocking="lsh:bands=2")
    assert str(e.value) == want
    with pytest.raises(blindlink.InputError) as e:
        blindlink.match(a, a, 0.8, "hungarian")
    assert str(e.value) == 'solver "hungarian": expected "greedy", "optimal" or "none"'
    missing = tmp_path / "missing.json"
    want = cli.error("match", "--a", missing, "--b", clk_files / "b.json", "--threshold", 0.8,
                     "--output", tmp_path / "p.csv")
    with pytest.raises(blindlink.InputError) as e:
        blindlink.match(missing, a, 0.8)
    assert str(e.value) == want


def parse_evaluate(stdout):
    values = {}
    sweep = []
    for line in stdout.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0][0].isdigit():
            sweep.append(parts)
        elif parts[-1][0].isdigit():
            values[" ".join(parts[:-1])] = parts[-1]
    return values, sweep


def test_evaluate_equals_the_cli(cli, clk_files, tmp_path, ja_data):
    pairs = tmp_path / "pairs.csv"
    cli("match", "--a", clk_files / "a.json", "--b", clk_files / "b.json", "--threshold", 0.6,
        "--output", pairs)
    # The truth as indices: registry row of each insurer row's person.
    data = blindlink.synth(persons=400, seed=5, locale="ja")
    truth_csv = tmp_path / "truth.csv"
    ids_a = {r: i for i, r in enumerate(data.a["record_id"])}
    ids_b = {r: i for i, r in enumerate(data.b["record_id"])}
    rows = [(ids_a[t["registry_record_id"]], ids_b[t["insurer_record_id"]])
            for _, t in data.truth.iterrows() if t["registry_record_id"]]
    truth_csv.write_text("a_index,b_index\n" + "".join(f"{x},{y}\n" for x, y in rows))
    out = cli("evaluate", "--pairs", pairs, "--truth", truth_csv, "--thresholds", "0.6:0.9:0.1",
              "--records", f"{len(data.a)},{len(data.b)}").stdout
    want, want_sweep = parse_evaluate(out)
    result = blindlink.match(clk_files / "a.json", clk_files / "b.json", 0.6)
    for truth, kwargs in ((truth_csv, {}), (rows, {}), (data.truth, {"a": data.a, "b": data.b})):
        got = blindlink.evaluate(result, truth, thresholds="0.6:0.9:0.1",
                                 records=(len(data.a), len(data.b)), **kwargs)
        assert str(got["pairs"]) == want["pairs"]
        assert str(got["true_positives"]) == want["true positives"]
        assert str(got["false_negatives"]) == want["false negatives"]
        assert f"{got['precision']:.4f}" == want["precision"]
        assert f"{got['recall']:.4f}" == want["recall"]
        assert f"{got['f_measure']:.4f}" == want["f-measure"]
        assert f"{got['reduction_ratio']:.6f}" == want["reduction ratio"]
        assert [[f"{t:.3f}", str(n), f"{p:.4f}", f"{r:.4f}", f"{f:.4f}"] for t, n, p, r, f in got["sweep"]] == want_sweep
    assert blindlink.evaluate(pairs, truth_csv)["f_measure"] == got["f_measure"]
    with pytest.raises(blindlink.InputError) as e:
        blindlink.evaluate(result, truth_csv, thresholds="0.9:0.6:0.1")
    assert str(e.value).startswith("thresholds 0.9:0.6:0.1: ")


def test_read_clks_errors(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"clks": []}')
    want = cli.error("match", "--a", bad, "--b", bad, "--threshold", 0.8, "--output", tmp_path / "p.csv")
    assert want.startswith(f"{bad} (--a): ")
    with pytest.raises(blindlink.InputError) as e:
        blindlink.match(bad, bad, 0.8)
    assert str(e.value) == want
    with pytest.raises(blindlink.InputError) as e:
        blindlink.read_clks(bad)
    assert str(e.value) == want.replace(" (--a)", "", 1)


def test_readme_example(monkeypatch, capsys):
    """The example of python/README.md runs from the repository root and links well."""
    from conftest import ROOT

    text = (ROOT / "python" / "README.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    # The repository's README shows the same example (issue 15: "a five-line example").
    top = (ROOT / "README.md").read_text()
    assert top.split("```python\n", 1)[1].split("```", 1)[0] == code
    monkeypatch.chdir(ROOT)
    exec(compile(code, "README.md", "exec"), {})
    result = eval(capsys.readouterr().out)
    assert result["precision"] > 0.95 and result["recall"] > 0.9, result
