#!/usr/bin/env python3
"""Derive the Japanese name and address tables of crates/synth/data/ from the MIT-licensed
gimei data (https://github.com/willnet/gimei, lib/data/names.yml and addresses.yml).

Usage: python3 scripts/synth_tables.py NAMES_YML ADDRESSES_YML OUT_DIR
(needs PyYAML; CI never runs this, the crate reads the committed tables).

What it does, so the tables can be checked by hand:
- surnames: gimei's 500 surnames, de-duplicated, the 20 most common moved to the front in the
  order of published rankings, each with a Zipf-Mandelbrot weight (rank + 7)^-1 in parts per
  10^9 of the table total;
- given names: kanji with their katakana reading and sex; gimei carries no frequencies, so the
  readings of each sex are ranked by how many kanji spellings gimei lists for them (a proxy for
  popularity), ties broken by a fixed pseudo-random shuffle, and weighted (rank + 20)^-1, shared
  evenly by the kanji spellings of that reading;
- cities: each of gimei's cities with its prefecture, found from the first city of each
  prefecture in gimei's JIS order;
- towns: gimei's town names (drawn independently of the city, as gimei does).
"""
import random
import sys

import yaml

TOP_SURNAMES = "佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 吉田 山田 佐々木 山口 松本 井上 木村 林 斎藤 清水".split()

# First city of each prefecture in gimei's list (JIS X 0402 order), in prefecture order.
FIRST_CITY = (
    "札幌市中央区 青森市 盛岡市 仙台市青葉区 秋田市 山形市 福島市 水戸市 宇都宮市 前橋市 "
    "さいたま市西区 千葉市中央区 千代田区 横浜市鶴見区 新潟市北区 富山市 金沢市 福井市 甲府市 "
    "長野市 岐阜市 静岡市葵区 名古屋市千種区 津市 大津市 京都市北区 大阪市都島区 神戸市東灘区 "
    "奈良市 和歌山市 鳥取市 松江市 岡山市北区 広島市中区 下関市 徳島市 高松市 松山市 高知市 "
    "北九州市門司区 佐賀市 長崎市 熊本市中央区 大分市 宮崎市 鹿児島市 那覇市"
).split()

# Population by prefecture, 2020 census, rounded to thousands (Statistics Bureau of Japan).
PREFECTURE_POPULATION_THOUSANDS = [
    5225, 1238, 1211, 2302, 960, 1068, 1833, 2867, 1933, 1939, 7345, 6284, 14048, 9237, 2201,
    1035, 1133, 767, 810, 2048, 1979, 3633, 7542, 1770, 1414, 2578, 8838, 5465, 1324, 923, 553,
    671, 1888, 2800, 1342, 720, 950, 1335, 692, 5135, 811, 1312, 1738, 1124, 1070, 1588, 1467,
]


def zipf_weights(count, offset):
    raw = [1.0 / (rank + offset) for rank in range(1, count + 1)]
    total = sum(raw)
    return [max(1, round(w / total * 1e9)) for w in raw]


def main():
    names_path, addresses_path, out = sys.argv[1:4]
    names = yaml.safe_load(open(names_path, encoding="utf-8"))
    addresses = yaml.safe_load(open(addresses_path, encoding="utf-8"))["addresses"]

    seen = set()
    surnames = []
    for kanji, _hira, kata, _romaji in names["last_name"]:
        if kanji not in seen:
            seen.add(kanji)
            surnames.append((kanji, kata))
    by_kanji = dict(surnames)
    ordered = [(k, by_kanji[k]) for k in TOP_SURNAMES]
    ordered += [s for s in surnames if s[0] not in TOP_SURNAMES]
    with open(f"{out}/ja_surnames.tsv", "w", encoding="utf-8") as f:
        f.write("# kanji\tkatakana\tweight (Zipf-Mandelbrot, (rank+7)^-1, parts per 1e9)\n")
        for (kanji, kata), w in zip(ordered, zipf_weights(len(ordered), 7)):
            f.write(f"{kanji}\t{kata}\t{w}\n")

    with open(f"{out}/ja_given_names.tsv", "w", encoding="utf-8") as f:
        f.write("# kanji\tkatakana\tsex\tweight (readings ranked by number of spellings: (rank+20)^-1 shared by its kanji; parts per 1e9 per sex)\n")
        for sex, key in (("M", "male"), ("F", "female")):
            entries, seen = [], set()
            for kanji, _hira, kata, _romaji in names["first_name"][key]:
                if (kanji, kata) not in seen:
                    seen.add((kanji, kata))
                    entries.append((kanji, kata))
            readings = sorted({kata for _, kata in entries})
            random.Random(5).shuffle(readings)
            # More kanji spellings of a reading in gimei means a more popular reading (ヒロシ,
            # ハルト; ハルカ, アヤカ): rank by that count, ties in the shuffled order.
            spelling_count = {r: sum(1 for _, k in entries if k == r) for r in readings}
            readings.sort(key=lambda r: -spelling_count[r])
            reading_weights = dict(zip(readings, zipf_weights(len(readings), 20)))
            spellings = {r: sum(1 for _, k in entries if k == r) for r in readings}
            for kanji, kata in entries:
                w = max(1, reading_weights[kata] // spellings[kata])
                f.write(f"{kanji}\t{kata}\t{sex}\t{w}\n")

    prefectures = [p[0] for p in addresses["prefecture"]]
    assert len(prefectures) == 47
    with open(f"{out}/ja_prefectures.tsv", "w", encoding="utf-8") as f:
        f.write("# prefecture\tpopulation 2020 census (thousands)\n")
        for p, pop in zip(prefectures, PREFECTURE_POPULATION_THOUSANDS):
            f.write(f"{p}\t{pop}\n")

    cities = [c[0] for c in addresses["city"]]
    starts = [cities.index(c) for c in FIRST_CITY]
    assert starts == sorted(starts) and starts[0] == 0
    with open(f"{out}/ja_cities.tsv", "w", encoding="utf-8") as f:
        f.write("# prefecture\tcity\n")
        for p, (begin, end) in enumerate(zip(starts, starts[1:] + [len(cities)])):
            for city in cities[begin:end]:
                f.write(f"{prefectures[p]}\t{city}\n")

    with open(f"{out}/ja_towns.tsv", "w", encoding="utf-8") as f:
        f.write("# town\n")
        seen = set()
        for town in addresses["town"]:
            if town[0] not in seen:
                seen.add(town[0])
                f.write(f"{town[0]}\n")


if __name__ == "__main__":
    main()
