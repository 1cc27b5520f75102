#!/usr/bin/env python3
"""Golden vectors for the greedy solver: random small candidate sets with many tied scores,
solved by anonlink 0.15.3's greedy_solve, written one case per line as

    a,b,score a,b,score ... => a,b a,b ...

to crates/matching/tests/data/anonlink_greedy.txt (read by the matching crate's tests).

    /tmp/venv-anonlink/bin/pip install anonlink==0.15.3
    /tmp/venv-anonlink/bin/python scripts/anonlink_greedy_vectors.py > crates/matching/tests/data/anonlink_greedy.txt
"""
import array
import random

import anonlink


def main():
    rng = random.Random(3)
    for _ in range(300):
        n = rng.randrange(1, 31)
        pairs = {}
        for _ in range(n):
            pairs[(rng.randrange(8), rng.randrange(8))] = rng.choice([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
        # anonlink's candidate order: similarity descending, then dataset and record indices.
        ordered = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1]))
        sims = array.array("d", [s for _, s in ordered])
        dsets = (array.array("I", [0] * len(ordered)), array.array("I", [1] * len(ordered)))
        recs = (array.array("I", [a for (a, _), _ in ordered]),
                array.array("I", [b for (_, b), _ in ordered]))
        groups = anonlink.solving.greedy_solve((sims, dsets, recs))
        links = sorted(anonlink.solving.pairs_from_groups(groups))
        # Candidates are written in a shuffled order: the solver must not depend on it.
        items = list(pairs.items())
        rng.shuffle(items)
        left = " ".join(f"{a},{b},{s}" for (a, b), s in items)
        right = " ".join(f"{a},{b}" for a, b in links)
        print(f"{left} => {right}")


if __name__ == "__main__":
    main()
