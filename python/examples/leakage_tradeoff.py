# %% [markdown]
# # The graph matching attack, unhardened against salted (papers/leakage.md, §3)
#
# Reproduces the 400-person rows of `papers/leakage.md` §3 through the Python package:
# the attacker holds no key, only the victim's encodings (as the comparing side of
# `clk-exchange` does) and a plaintext file of overlapping persons, which it encodes with a key of
# its own; it matches the two similarity graphs (Vidanage et al., CIKM 2020). A year-of-birth
# salt (salt-yob) breaks the graph. Same population, key and parameters as
# `blindlink bench leakage --quick --persons 400 --locales ja`.
#
#     python python/examples/leakage_tradeoff.py

# %%
import time

from blindlink import leakage

PAPER = {  # papers/leakage.md §3: re-identified 1-to-1, 400 persons, ja
    ("clk-l1024-k10-q2-5f", "none"): 1.000,
    ("per-field-l256-k10-q2-5f", "none"): 1.000,
    ("clk-l1000-k10-q2-2f", "none"): 0.918,
    ("clk-l1024-k10-q2-5f", "salt-yob"): 0.030,
    ("per-field-l256-k10-q2-5f", "salt-yob"): 0.045,
    ("clk-l1000-k10-q2-2f", "salt-yob"): 0.015,
}

# %% The population: `bench leakage`'s defaults (seed 1, full overlap).
started = time.perf_counter()
files = leakage.LinkedFiles("ja", persons=400, overlap=1.0, seed=1)
print(files)

# %% The three encodings of the benchmark, each unhardened and salted.
encodings = [
    dict(),  # the graph-matching literature's CLK: l=1024, k=10, q=2, five fields
    dict(layout="per-field", bits=256),
    dict(bits=1000, fields=[0, 1]),  # the two name fields
]
rows = []
for hardening in ("none", "salt-yob"):
    for kwargs in encodings:
        config = leakage.EncodingConfig(hardening=hardening, **kwargs)
        # clk-exchange's comparing side: encodings outside the party, no key.
        measured = dict(leakage.run_attacks(files, config, encodings_to_key_holder=False))
        rows.append((config.label(), hardening, measured["graph-matching"]["reidentified"]))

# %% Side by side with the paper.
print(f"{'encoding':<26} {'hardening':<9} {'re-identified':>13} {'paper':>7}")
for label, hardening, share in rows:
    print(f"{label:<26} {hardening:<9} {share:>12.1%} {PAPER[(label, hardening)]:>7.1%}")
print(f"({time.perf_counter() - started:.1f} s)")

# %% The check: each share is the paper's, as the paper rounds it (one decimal of a percent).
for label, hardening, share in rows:
    assert abs(share - PAPER[(label, hardening)]) <= 0.0005 + 1e-9, (label, hardening, share)
