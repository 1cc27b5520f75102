"""`blindlink.leakage`: the attacks and metrics of `blindlink-leakage`, through the package;
the building blocks give what `run_attacks` (one row of `blindlink bench leakage`) gives."""

import numpy as np
import pytest

import blindlink
from blindlink import leakage


@pytest.fixture(scope="module")
def files():
    return leakage.LinkedFiles("ja", persons=200, overlap=1.0, seed=7)


def same(files):
    return lambda target, candidate: files.same_person(candidate, target)


def test_files_and_truth(files):
    assert files.columns == ["name_kana", "name_kanji", "date_of_birth", "sex", "address"]
    assert files.columns == leakage.quasi_identifiers("ja")
    pairs = files.true_pairs()
    assert len(pairs) > 150
    assert all(files.same_person(r, v) for r, v in pairs)
    assert not files.same_person(len(files.reference_rows), 0)
    assert len(files.victim_rows[0]) == 5


def test_encoding_config():
    config = leakage.EncodingConfig()
    assert config.label() == "clk-l1024-k10-q2-5f" and config.hardening == "none"
    salted = leakage.EncodingConfig(layout="per-field", bits=256, hardening="salt-yob")
    assert salted.label() == "per-field-l256-k10-q2-5f" and salted.hardening == "salt-yob"
    assert 'column = "birth_year"' in salted.schema_toml("ja")
    assert leakage.EncodingConfig(hardening="blip-eps2").hardening == "blip-eps2"


def test_graph_matching_equals_run_attacks(files):
    config = leakage.EncodingConfig()
    victim = leakage.encode(config, files, "victim", leakage.BENCH_SECRET)
    own = leakage.encode(config, files, "reference", b"the attacker's own key")
    assert victim.shape == (len(files.victim_rows), 128) and victim.dtype == np.uint8
    guesses = leakage.graph_matching_attack(victim, own)
    score = leakage.attack_score(guesses, 1, same(files))
    rows = dict(leakage.run_attacks(files, config, encodings_to_key_holder=False))
    assert score == rows["graph-matching"]
    assert score["targets"] == len(files.victim_rows)


def test_key_holder_decode_equals_run_attacks(files):
    config = leakage.EncodingConfig(layout="per-field", bits=256)
    victim = leakage.encode(config, files, "victim", leakage.BENCH_SECRET)
    guesses = leakage.key_holder_decode_records(files, config, leakage.BENCH_SECRET, victim)
    score = leakage.attack_score(guesses, 10, same(files))
    assert score["reidentified"] > 0.9  # the key holder decodes unhardened encodings
    rows = dict(leakage.run_attacks(files, config, encodings_outside=False))
    assert score == rows["key-holder-records"]
    fields = leakage.key_holder_decode_fields(files, config, leakage.BENCH_SECRET, victim)
    assert len(fields) == 5 and all(len(g) == len(files.victim_rows) for g, _ in fields)
    assert "F" in fields[3][1] or "2" in fields[3][1]  # the sex codes are in its dictionary


def test_keyed_blip_is_stripped(files):
    config = leakage.EncodingConfig(hardening="blip-eps2")
    seed = bytes(range(32))
    victim = leakage.encode(config, files, "victim", leakage.BENCH_SECRET, blip_seed=seed)
    keyed = leakage.key_holder_decode_records(files, config, leakage.BENCH_SECRET, victim, blip_seed=seed)
    fresh = leakage.key_holder_decode_records(files, config, leakage.BENCH_SECRET, victim)
    # Knowing the seed, the key holder strips the flips: most victims match a reference
    # record exactly (the rest differ in the data); without it, none does.
    assert sum(c == 1.0 for _, c in keyed) > 0.9 * len(keyed)
    assert sum(c == 1.0 for _, c in fresh) == 0


def test_linkage_and_metrics(files):
    threshold, score = leakage.clk_linkage(files, leakage.EncodingConfig())
    assert threshold in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9) and score["f_measure"] > 0.9
    _, tokens = leakage.token_linkage(files)
    assert tokens["f_measure"] > 0.9
    config = leakage.EncodingConfig()
    left = leakage.encode(config, files, "reference", leakage.BENCH_SECRET)
    right = leakage.encode(config, files, "victim", leakage.BENCH_SECRET)
    links = leakage.link_greedy(left, right, threshold)
    assert leakage.score_links(links, files.true_pairs(), files.same_person) == score
    assert leakage.dice(left[0], left[0]) == 1.0
    graph = leakage.similarity_graph(left[:10])
    assert graph.shape == (10, 10) and graph.dtype == np.float32 and graph[3, 3] == 1.0


def test_frequency_attacks_on_a_repeated_value(files):
    config = leakage.EncodingConfig(bits=1000, fields=[0])
    victim = leakage.encode(config, files, "victim", leakage.BENCH_SECRET)
    sample = [[r[0]] for r in files.reference_rows]
    for attack in (leakage.frequency_attack, leakage.pattern_mining_attack):
        values, guesses = attack(victim, sample, q=2)
        assert len(guesses) == len(victim)
        assert all(all(0 <= c < len(values) for c in g) for g, _ in guesses)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: leakage.EncodingConfig(hardening="salt"),
         'hardening "salt": expected none, balance, xor-fold, rule90, permute, salt-yob or blip-eps<ε>'),
        (lambda: leakage.EncodingConfig(fields=[7]), "fields: 7 is not a quasi-identifier index (0 to 4)"),
        (lambda: leakage.LinkedFiles("fr"), 'locale "fr": expected "ja" or "en"'),
        (lambda: leakage.graph_matching_attack(np.zeros(3, np.uint8), np.zeros((1, 3), np.uint8)),
         "expected a 2-d uint8 array of filters, got 1-d"),
    ],
)
def test_errors(make, message):
    with pytest.raises(blindlink.InputError) as e:
        make()
    assert str(e.value) == message


def test_the_notebook_example_reproduces_leakage_md(capsys):
    """python/examples/leakage_tradeoff.py (issue 15: "a notebook-style example that reproduces
    one figure of papers/leakage.md") gives §3's 400-person rows, and the figures it checks
    against are the ones the paper prints."""
    import re
    import runpy

    from conftest import ROOT

    example = runpy.run_path(str(ROOT / "python" / "examples" / "leakage_tradeoff.py"))
    assert "salt-yob" in capsys.readouterr().out
    paper = (ROOT / "papers" / "leakage.md").read_text()
    encodings = ["clk-l1024-k10-q2-5f", "per-field-l256-k10-q2-5f", "clk-l1000-k10-q2-2f"]
    for hardening, row in (("none", "400 persons, unhardened: 5-field CLK / per-field / 2-field CLK"),
                           ("salt-yob", "400 persons, salt-yob: same three")):
        cells = re.search(r"\| " + re.escape(row) + r" \| ([^|]*) \|", paper).group(1)
        shares = [round(float(s) / 100, 3) for s in re.findall(r"([0-9.]+) %", cells)]
        assert shares == [example["PAPER"][(e, hardening)] for e in encodings], row
