//! Throughput of the normalisation pipelines on realistic Japanese and Latin values.
//!
//! Run: `cargo bench -p blindlink-benches --bench normalise`. Each benchmark normalises a fixed
//! batch of 1,024 values with one pipeline, reusing the output buffers as the encoder does, and
//! reports values per second.
// Benchmark set-up on fixed, known-good inputs: a failed unwrap is a broken benchmark.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use blindlink_encoding::normalise::Pipeline;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 1024;

const FAMILY_KANA: [&str; 8] = [
    "ﾀｶﾊｼ",
    "やまだ",
    "ワタナベ",
    "ｻｲﾄｳ",
    "きょうごく",
    "ヴァレンタイン",
    "スズキ",
    "ﾂﾂﾞｷ",
];
const GIVEN_KANA: [&str; 8] = [
    "ﾀﾛｳ",
    "はなこ",
    "ユウキ",
    "ｼｮｳﾀ",
    "れいな",
    "ジュン",
    "ミッキー",
    "ｹﾝｲﾁ",
];
const FAMILY_KANJI: [&str; 8] = [
    "髙橋", "山田", "渡邉", "齋藤", "京極", "﨑山", "鈴木", "櫻井",
];
const GIVEN_KANJI: [&str; 8] = [
    "太郎", "花子", "優希", "翔太", "玲奈", "眞一", "德子", "健一",
];
const LATIN: [&str; 8] = [
    "  John  SMITH ",
    "Ｍａｒｙ Ｊｏｎｅｓ",
    "José García",
    "STRASSE Anna",
    "li wei",
    "O'Brien Sean",
    "Ødegaard Åse",
    "Müller Jürgen",
];
const DATES: [&str; 8] = [
    "1985-04-03",
    "1985/4/3",
    "19850403",
    "昭和60年4月3日",
    "S60.4.3",
    "平成元年1月8日",
    "Ｈ１．１．８",
    "R5.12.1",
];
const ADDRESSES: [&str; 8] = [
    "東京都千代田区千代田1丁目1番1号",
    "東京都 千代田区 霞が関 一丁目２番３号",
    "大阪府大阪市北区梅田3-1-1",
    "北海道札幌市中央区北1条西2丁目",
    "神奈川県横浜市西区みなとみらい２－３－５ ランドマーク101号室",
    "京都府京都市左京区吉田本町36番地の1",
    "福岡県福岡市博多区博多駅前二丁目1番1号",
    "沖縄県那覇市泉崎1－2－2",
];

fn batch(make: impl Fn(usize) -> String) -> Vec<String> {
    (0..BATCH).map(make).collect()
}

fn bench_pipeline(c: &mut Criterion, name: &str, steps: &[&str], values: &[String]) {
    let pipeline = Pipeline::parse(steps).expect("known steps");
    let mut group = c.benchmark_group("normalise");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function(name, |b| {
        let (mut out, mut scratch) = (String::new(), String::new());
        b.iter(|| {
            for value in values {
                // Rejected values (none in these batches) cost the same as accepted ones.
                let _ = pipeline.apply_into(black_box(value), &mut out, &mut scratch);
                black_box(&out);
            }
        });
    });
    group.finish();
}

fn normalise(c: &mut Criterion) {
    let kana = batch(|i| format!("{} {}", FAMILY_KANA[i % 8], GIVEN_KANA[(i / 8) % 8]));
    let kanji = batch(|i| format!("{}　{}", FAMILY_KANJI[i % 8], GIVEN_KANJI[(i / 8) % 8]));
    let latin = batch(|i| LATIN[i % 8].to_owned());
    let dates = batch(|i| DATES[i % 8].to_owned());
    let addresses = batch(|i| ADDRESSES[i % 8].to_owned());
    let ascii_dates =
        batch(|i| format!("19{:02}-{:02}-{:02}", 30 + i % 70, 1 + i % 12, 1 + i % 28));

    let japanese_name = [
        "nfkc",
        "itaiji",
        "katakana",
        "strip-whitespace",
        "vu-fold",
        "small-kana-fold",
        "kana-reading-fold",
        "long-vowel-drop",
    ];
    bench_pipeline(c, "japanese_name_kana", &japanese_name, &kana);
    bench_pipeline(c, "japanese_name_kanji", &japanese_name, &kanji);
    bench_pipeline(c, "nfkc_kana", &["nfkc"], &kana);
    bench_pipeline(c, "halfwidth_kana", &["halfwidth-kana"], &kana);
    bench_pipeline(c, "itaiji_kanji", &["itaiji"], &kanji);
    bench_pipeline(c, "latin_name", &["nfkc", "casefold", "whitespace"], &latin);
    bench_pipeline(c, "date_mixed", &["date"], &dates);
    bench_pipeline(c, "date_iso", &["date"], &ascii_dates);
    bench_pipeline(
        c,
        "address",
        &["nfkc", "jp-address", "drop-prefecture"],
        &addresses,
    );
}

criterion_group!(benches, normalise);
criterion_main!(benches);
