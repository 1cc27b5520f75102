//! The attacks and metrics of `blindlink-leakage`: the key holder's dictionary decode, the
//! frequency and pattern-mining attacks, the graph matching attack, the attack and linkage
//! scores, and one benchmark configuration end to end (`run_attacks`, `clk_linkage`,
//! `token_linkage`), as `blindlink bench leakage` runs them.

use blindlink_encoding::LinkageSecret;
use blindlink_leakage as leak;
use blindlink_leakage::{
    AttackScore, BlipKnowledge, BlipSeed, Disclosure, FilterLayout, FrequencyParams, GraphParams,
    Guess, Hardening, KeyHolder, LinkageScore,
};
use blindlink_synth::Locale;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict};

use crate::encode::SecretSource;
use crate::errors::{InputError, Kind, OrRaise};

fn locale(code: &str) -> PyResult<Locale> {
    match code {
        "ja" => Ok(Locale::Japanese),
        "en" => Ok(Locale::Latin),
        other => Err(InputError::new_err(format!(
            "locale {other:?}: expected \"ja\" or \"en\""
        ))),
    }
}

fn locale_code(locale: Locale) -> &'static str {
    match locale {
        Locale::Japanese => "ja",
        Locale::Latin => "en",
    }
}

fn secret(value: &Bound<'_, PyAny>) -> PyResult<LinkageSecret> {
    let bytes = SecretSource::extract(value)?
        .read()
        .or_raise(Kind::Config)?;
    LinkageSecret::from_bytes(bytes.to_vec()).or_raise(Kind::Config)
}

/// Filters given as `width` bytes each, back to back.
fn filters(bytes: &[u8], width: usize) -> PyResult<Vec<Vec<u8>>> {
    if width == 0 || !bytes.len().is_multiple_of(width) {
        return Err(InputError::new_err(format!(
            "{} bytes are not a whole number of {width}-byte filters",
            bytes.len()
        )));
    }
    Ok(bytes.chunks_exact(width).map(<[u8]>::to_vec).collect())
}

fn flat<'py>(py: Python<'py>, filters: &[Vec<u8>]) -> (Bound<'py, PyByteArray>, usize, usize) {
    let width = filters.first().map_or(0, Vec::len);
    (
        PyByteArray::new(py, &filters.concat()),
        filters.len(),
        width,
    )
}

/// A guess as Python sees it: candidate indices and the confidence.
type PyGuess = (Vec<usize>, f64);

fn guesses(g: Vec<Guess>) -> Vec<PyGuess> {
    g.into_iter()
        .map(|g| (g.candidates, g.confidence))
        .collect()
}

fn from_py_guesses(g: Vec<PyGuess>) -> Vec<Guess> {
    g.into_iter()
        .map(|(candidates, confidence)| Guess {
            candidates,
            confidence,
        })
        .collect()
}

fn score_dict<'py>(py: Python<'py>, s: &AttackScore) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("targets", s.targets)?;
    d.set_item("guessed_1to1", s.guessed_1to1)?;
    d.set_item("correct_1to1", s.correct_1to1)?;
    d.set_item("guessed_1tom", s.guessed_1tom)?;
    d.set_item("correct_1tom", s.correct_1tom)?;
    d.set_item("disclosure_risk", s.disclosure_risk)?;
    d.set_item("reidentified", s.reidentified())?;
    d.set_item("reidentified_1tom", s.reidentified_1tom())?;
    d.set_item("precision", s.precision())?;
    Ok(d)
}

fn linkage_dict<'py>(py: Python<'py>, s: &LinkageScore) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("links", s.links)?;
    d.set_item("correct", s.correct)?;
    d.set_item("mislinks", s.mislinks)?;
    d.set_item("true_pairs", s.true_pairs)?;
    d.set_item("precision", s.precision())?;
    d.set_item("recall", s.recall())?;
    d.set_item("f_measure", s.f_measure())?;
    d.set_item("mislink_rate", s.mislink_rate())?;
    Ok(d)
}

/// The victim's and the attacker's synthetic files with their ground truth
/// (`blindlink_leakage::LinkedFiles`).
#[pyclass(module = "blindlink", frozen)]
#[derive(Debug)]
pub(crate) struct LinkedFiles(leak::LinkedFiles);

#[pymethods]
impl LinkedFiles {
    /// Generates `persons` persons of `locale` ("ja" or "en") with `overlap` of them in both
    /// files, from `seed` (as `blindlink bench leakage --persons --overlap --seed`).
    #[new]
    #[pyo3(signature = (locale="ja", persons=1000, overlap=1.0, seed=1))]
    fn new(py: Python<'_>, locale: &str, persons: u64, overlap: f64, seed: u64) -> PyResult<Self> {
        let locale = self::locale(locale)?;
        py.detach(|| leak::LinkedFiles::generate(locale, persons, overlap, seed))
            .or_raise(Kind::Input)
            .map(Self)
    }

    #[getter]
    fn locale(&self) -> &'static str {
        locale_code(self.0.locale)
    }

    /// The quasi-identifier columns of both tables.
    #[getter]
    fn columns(&self) -> Vec<&'static str> {
        self.0.reference.columns.clone()
    }

    /// The attacker's plaintext (hospital A), one list of strings per record.
    #[getter]
    fn reference_rows(&self) -> Vec<Vec<String>> {
        self.0.reference.rows.clone()
    }

    /// The victim's file (hospital B), whose encodings are attacked.
    #[getter]
    fn victim_rows(&self) -> Vec<Vec<String>> {
        self.0.victim.rows.clone()
    }

    /// The true pairs (reference index, victim index).
    fn true_pairs(&self) -> Vec<(usize, usize)> {
        self.0.true_pairs()
    }

    /// Whether reference record `r` and victim record `v` are the same person.
    fn same_person(&self, r: usize, v: usize) -> bool {
        r < self.0.reference.len() && v < self.0.victim.len() && self.0.same_person(r, v)
    }

    fn __len__(&self) -> usize {
        self.0.reference.len() + self.0.victim.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "LinkedFiles(locale={:?}, reference={} records, victim={} records, {} true pairs)",
            locale_code(self.0.locale),
            self.0.reference.len(),
            self.0.victim.len(),
            self.0.true_pairs().len()
        )
    }
}

fn hardening(text: &str) -> PyResult<Hardening> {
    Ok(match text {
        "none" => Hardening::None,
        "balance" => Hardening::Balance,
        "xor-fold" => Hardening::XorFold,
        "rule90" => Hardening::Rule90,
        "permute" => Hardening::Permute,
        "salt-yob" => Hardening::SaltYear,
        other => match other.strip_prefix("blip-eps").map(str::parse::<f64>) {
            Some(Ok(e)) if e > 0.0 => Hardening::Blip(e),
            _ => {
                return Err(InputError::new_err(format!(
                    "hardening {other:?}: expected none, balance, xor-fold, rule90, permute, \
                     salt-yob or blip-eps<ε>"
                )));
            }
        },
    })
}

/// An encoding of some quasi-identifiers (`blindlink_leakage::EncodingConfig`).
#[pyclass(module = "blindlink", frozen)]
#[derive(Debug)]
pub(crate) struct EncodingConfig(leak::EncodingConfig);

#[pymethods]
impl EncodingConfig {
    /// `layout` "clk" (one filter of `bits`) or "per-field" (one of `bits` per field);
    /// `fields` index the quasi-identifiers (name_kana, name_kanji, date_of_birth, sex,
    /// address for ja); `hardening` as `leakage.csv` names it.
    #[new]
    #[pyo3(signature = (layout="clk", bits=1024, bits_per_token=10, q=2, fields=vec![0, 1, 2, 3, 4], hardening="none"))]
    fn new(
        layout: &str,
        bits: usize,
        bits_per_token: u32,
        q: usize,
        fields: Vec<usize>,
        hardening: &str,
    ) -> PyResult<Self> {
        let layout = match layout {
            "clk" => FilterLayout::Clk,
            "per-field" => FilterLayout::PerField,
            other => {
                return Err(InputError::new_err(format!(
                    "layout {other:?}: expected \"clk\" or \"per-field\""
                )));
            }
        };
        if let Some(&f) = fields.iter().find(|&&f| f >= 5) {
            return Err(InputError::new_err(format!(
                "fields: {f} is not a quasi-identifier index (0 to 4)"
            )));
        }
        Ok(Self(leak::EncodingConfig {
            layout,
            bits,
            bits_per_token,
            q,
            fields,
            hardening: self::hardening(hardening)?,
        }))
    }

    /// The encoding's label in `leakage.csv` (`clk1024-k10-q2-5f`, ...).
    fn label(&self) -> String {
        self.0.label()
    }

    /// The hardening's label in `leakage.csv`.
    #[getter]
    fn hardening(&self) -> String {
        self.0.hardening.label()
    }

    /// The native schema TOML the encoding is made with.
    #[pyo3(signature = (locale="ja"))]
    fn schema_toml(&self, locale: &str) -> PyResult<String> {
        Ok(self.0.schema_toml(self::locale(locale)?))
    }

    /// Encodes the "victim" or "reference" table of `files` under `secret` as its party
    /// would; `blip_seed` (32 bytes) fixes BLIP's flips (else fresh from the OS).
    #[pyo3(signature = (files, which, secret, blip_seed=None))]
    fn encode<'py>(
        &self,
        py: Python<'py>,
        files: &LinkedFiles,
        which: &str,
        secret: &Bound<'py, PyAny>,
        blip_seed: Option<[u8; 32]>,
    ) -> PyResult<(Bound<'py, PyByteArray>, usize, usize)> {
        let secret = self::secret(secret)?;
        let table = table(&files.0, which)?;
        let filters = py
            .detach(|| -> Result<_, leak::LeakageError> {
                let mut encoder = self.0.encoder(files.0.locale, &secret)?;
                if let Some(seed) = blip_seed {
                    encoder = encoder.with_blip_seed(seed);
                }
                self.0.encode(files.0.locale, table, &encoder)
            })
            .or_raise(Kind::Input)?;
        Ok(flat(py, &filters))
    }

    fn __repr__(&self) -> String {
        format!(
            "EncodingConfig({} {})",
            self.0.label(),
            self.0.hardening.label()
        )
    }
}

fn table<'a>(files: &'a leak::LinkedFiles, which: &str) -> PyResult<&'a leak::Table> {
    match which {
        "victim" => Ok(&files.victim),
        "reference" => Ok(&files.reference),
        other => Err(InputError::new_err(format!(
            "which {other:?}: expected \"victim\" or \"reference\""
        ))),
    }
}

fn key_holder(
    files: &LinkedFiles,
    config: &EncodingConfig,
    secret: &LinkageSecret,
    blip_seed: Option<[u8; 32]>,
) -> PyResult<KeyHolder> {
    let knowledge = blip_seed.map_or(BlipKnowledge::None, BlipKnowledge::Seed);
    KeyHolder::new(&config.0, files.0.locale, secret, knowledge).or_raise(Kind::Input)
}

/// The key holder's record-level decode: per victim filter, the reference records nearest to
/// it once the key holder re-encoded them (`blip_seed`: the victim's BLIP seed, if known).
#[pyfunction]
#[pyo3(signature = (files, config, secret, victim, width, blip_seed=None))]
fn key_holder_decode_records(
    py: Python<'_>,
    files: &LinkedFiles,
    config: &EncodingConfig,
    secret: &Bound<'_, PyAny>,
    victim: &[u8],
    width: usize,
    blip_seed: Option<[u8; 32]>,
) -> PyResult<Vec<PyGuess>> {
    let secret = self::secret(secret)?;
    let holder = key_holder(files, config, &secret, blip_seed)?;
    let victim = filters(victim, width)?;
    py.detach(|| holder.decode_records(&victim, &files.0.reference))
        .or_raise(Kind::Input)
        .map(guesses)
}

/// The key holder's field-level decode of a per-field encoding: per configured field, the
/// guesses (indices into the dictionary) and the dictionary of normalised values (the
/// reference's values, every date 1900-2025, every sex code), as `run_attacks` does.
#[pyfunction]
#[pyo3(signature = (files, config, secret, victim, width, blip_seed=None))]
fn key_holder_decode_fields(
    py: Python<'_>,
    files: &LinkedFiles,
    config: &EncodingConfig,
    secret: &Bound<'_, PyAny>,
    victim: &[u8],
    width: usize,
    blip_seed: Option<[u8; 32]>,
) -> PyResult<Vec<(Vec<PyGuess>, Vec<String>)>> {
    let secret = self::secret(secret)?;
    let holder = key_holder(files, config, &secret, blip_seed)?;
    let victim = filters(victim, width)?;
    let files = &files.0;
    let q = config.0.q;
    py.detach(|| {
        let mut years = leak::birth_years(files.locale, &files.reference);
        years.sort_unstable();
        years.dedup();
        holder.decode_fields(
            &victim,
            |f| leak::field_dictionary(files.locale, &files.reference, f, q),
            &years,
        )
    })
    .or_raise(Kind::Input)
    .map(|decoded| {
        decoded
            .into_iter()
            .map(|(g, dictionary)| (guesses(g), dictionary))
            .collect()
    })
}

fn frequency_params(
    q: usize,
    exact_fields: u32,
    gap: Option<f64>,
    stop_gap: Option<f64>,
    min_partition: Option<usize>,
    qgrams: Option<usize>,
    max_candidates: Option<usize>,
) -> FrequencyParams {
    let d = FrequencyParams::default();
    FrequencyParams {
        q,
        exact_fields,
        gap: gap.unwrap_or(d.gap),
        stop_gap: stop_gap.unwrap_or(d.stop_gap),
        min_partition: min_partition.unwrap_or(d.min_partition),
        qgrams: qgrams.unwrap_or(d.qgrams),
        max_candidates: max_candidates.unwrap_or(d.max_candidates),
    }
}

/// Christen et al.'s frequency attack (PAKDD 2017): the distinct plaintext values of
/// `sample` (fields joined by `|`) and a guess per victim filter indexing them.
#[pyfunction]
#[pyo3(signature = (victim, width, sample, q=2, exact_fields=0, gap=None, stop_gap=None, min_partition=None, qgrams=None, max_candidates=None))]
#[allow(clippy::too_many_arguments)]
fn frequency_attack(
    py: Python<'_>,
    victim: &[u8],
    width: usize,
    sample: Vec<Vec<String>>,
    q: usize,
    exact_fields: u32,
    gap: Option<f64>,
    stop_gap: Option<f64>,
    min_partition: Option<usize>,
    qgrams: Option<usize>,
    max_candidates: Option<usize>,
) -> PyResult<(Vec<String>, Vec<PyGuess>)> {
    let victim = filters(victim, width)?;
    let params = frequency_params(
        q,
        exact_fields,
        gap,
        stop_gap,
        min_partition,
        qgrams,
        max_candidates,
    );
    let result = py.detach(|| leak::frequency_attack(&victim, &sample, params));
    Ok((result.values, guesses(result.guesses)))
}

/// Christen et al.'s pattern-mining attack (PAKDD 2018), as [`frequency_attack`].
#[pyfunction]
#[pyo3(signature = (victim, width, sample, q=2, exact_fields=0, gap=None, stop_gap=None, min_partition=None, qgrams=None, max_candidates=None))]
#[allow(clippy::too_many_arguments)]
fn pattern_mining_attack(
    py: Python<'_>,
    victim: &[u8],
    width: usize,
    sample: Vec<Vec<String>>,
    q: usize,
    exact_fields: u32,
    gap: Option<f64>,
    stop_gap: Option<f64>,
    min_partition: Option<usize>,
    qgrams: Option<usize>,
    max_candidates: Option<usize>,
) -> PyResult<(Vec<String>, Vec<PyGuess>)> {
    let victim = filters(victim, width)?;
    let params = frequency_params(
        q,
        exact_fields,
        gap,
        stop_gap,
        min_partition,
        qgrams,
        max_candidates,
    );
    let result = py.detach(|| leak::pattern_mining_attack(&victim, &sample, params));
    Ok((result.values, guesses(result.guesses)))
}

/// The dense Dice similarity graph of the filters (row major, diagonal 1).
#[pyfunction]
fn similarity_graph(py: Python<'_>, filters: &[u8], width: usize) -> PyResult<Vec<Vec<f32>>> {
    let filters = self::filters(filters, width)?;
    Ok(py.detach(|| leak::similarity_graph(&filters)))
}

/// Vidanage et al.'s graph matching attack: matches the similarity graph of the victim's
/// filters with that of the attacker's own encodings of its plaintext; one guess per victim
/// filter (an index into the attacker's records).
#[pyfunction]
#[pyo3(signature = (victim, victim_width, own, own_width, profile=None, first_anchors=None, rounds=None, max_anchors=None))]
#[allow(clippy::too_many_arguments)]
fn graph_matching_attack(
    py: Python<'_>,
    victim: &[u8],
    victim_width: usize,
    own: &[u8],
    own_width: usize,
    profile: Option<usize>,
    first_anchors: Option<f64>,
    rounds: Option<usize>,
    max_anchors: Option<usize>,
) -> PyResult<Vec<PyGuess>> {
    let victim = filters(victim, victim_width)?;
    let own = filters(own, own_width)?;
    let params = graph_params(profile, first_anchors, rounds, max_anchors);
    Ok(guesses(py.detach(|| {
        leak::graph_matching_attack(
            &leak::similarity_graph(&victim),
            &leak::similarity_graph(&own),
            params,
        )
    })))
}

fn graph_params(
    profile: Option<usize>,
    first_anchors: Option<f64>,
    rounds: Option<usize>,
    max_anchors: Option<usize>,
) -> GraphParams {
    let d = GraphParams::default();
    GraphParams {
        profile: profile.unwrap_or(d.profile),
        first_anchors: first_anchors.unwrap_or(d.first_anchors),
        rounds: rounds.unwrap_or(d.rounds),
        max_anchors: max_anchors.unwrap_or(d.max_anchors),
    }
}

/// Scores guesses: a guess naming at most `m` candidates counts, `is_right(target,
/// candidate)` says whether a candidate is right.
#[pyfunction]
fn attack_score<'py>(
    py: Python<'py>,
    guesses: Vec<PyGuess>,
    m: usize,
    is_right: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let guesses = from_py_guesses(guesses);
    let failure = std::cell::RefCell::new(None);
    let score = AttackScore::measure(&guesses, m, |t, c| {
        match is_right.call1((t, c)).and_then(|r| r.is_truthy()) {
            Ok(right) => right,
            Err(e) => {
                failure.borrow_mut().get_or_insert(e);
                false
            }
        }
    });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    score_dict(py, &score)
}

/// The Dice similarity of two filters.
#[pyfunction]
fn dice(a: &[u8], b: &[u8]) -> PyResult<f64> {
    if a.len() != b.len() {
        return Err(InputError::new_err(format!(
            "the filters differ in length: {} and {} bytes",
            a.len(),
            b.len()
        )));
    }
    Ok(leak::dice(a, b))
}

/// Greedy one-to-one links (left index, right index) of Dice at least `threshold`.
#[pyfunction]
fn link_greedy(
    py: Python<'_>,
    left: &[u8],
    left_width: usize,
    right: &[u8],
    right_width: usize,
    threshold: f64,
) -> PyResult<Vec<(usize, usize)>> {
    let left = filters(left, left_width)?;
    let right = filters(right, right_width)?;
    Ok(py.detach(|| leak::link_greedy(&left, &right, threshold)))
}

/// Scores links (reference, victim) against the true pairs, `same_person(r, v)` deciding.
#[pyfunction]
fn score_links<'py>(
    py: Python<'py>,
    links: Vec<(usize, usize)>,
    true_pairs: Vec<(usize, usize)>,
    same_person: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let failure = std::cell::RefCell::new(None);
    let score = leak::score_links(&links, &true_pairs, |r, v| {
        match same_person.call1((r, v)).and_then(|x| x.is_truthy()) {
            Ok(same) => same,
            Err(e) => {
                failure.borrow_mut().get_or_insert(e);
                false
            }
        }
    });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    linkage_dict(py, &score)
}

/// One configuration of `blindlink bench leakage`: the attacks `disclosure` makes possible
/// on `config`'s encodings of the victim file; `[(attack, score)]`.
#[pyfunction]
#[pyo3(signature = (files, config, secret, blip="fresh", encodings_to_key_holder=true, encodings_outside=true, profile=None, first_anchors=None, rounds=None, max_anchors=None))]
#[allow(clippy::too_many_arguments)]
fn run_attacks<'py>(
    py: Python<'py>,
    files: &LinkedFiles,
    config: &EncodingConfig,
    secret: &Bound<'py, PyAny>,
    blip: &str,
    encodings_to_key_holder: bool,
    encodings_outside: bool,
    profile: Option<usize>,
    first_anchors: Option<f64>,
    rounds: Option<usize>,
    max_anchors: Option<usize>,
) -> PyResult<Vec<(&'static str, Bound<'py, PyDict>)>> {
    let secret = self::secret(secret)?;
    let blip = match blip {
        "fresh" => BlipSeed::Fresh,
        "keyed" => BlipSeed::Keyed,
        other => {
            return Err(InputError::new_err(format!(
                "blip {other:?}: expected \"fresh\" or \"keyed\""
            )));
        }
    };
    let disclosure = Disclosure {
        encodings_to_key_holder,
        encodings_outside,
    };
    let params = graph_params(profile, first_anchors, rounds, max_anchors);
    let measurements = py
        .detach(|| leak::run_attacks(&files.0, &config.0, &secret, blip, disclosure, params))
        .or_raise(Kind::Input)?;
    measurements
        .iter()
        .map(|m| Ok((m.attack, score_dict(py, &m.score)?)))
        .collect()
}

/// Links the two files by the Dice similarity of `config`'s encodings, greedy one-to-one at
/// the threshold with the best F: (threshold, linkage score).
#[pyfunction]
fn clk_linkage<'py>(
    py: Python<'py>,
    files: &LinkedFiles,
    config: &EncodingConfig,
    secret: &Bound<'py, PyAny>,
) -> PyResult<(f64, Bound<'py, PyDict>)> {
    let secret = self::secret(secret)?;
    let (t, score) = py
        .detach(|| leak::clk_linkage(&files.0, &config.0, &secret))
        .or_raise(Kind::Input)?;
    Ok((t, linkage_dict(py, &score)?))
}

/// Links the two files by the Dice similarity of their q-gram token sets over `fields`
/// (what `validate` and `fuzzy` compare through grouped PSI): (threshold, linkage score).
#[pyfunction]
#[pyo3(signature = (files, fields=vec![0, 1, 2, 3, 4], q=2))]
fn token_linkage<'py>(
    py: Python<'py>,
    files: &LinkedFiles,
    fields: Vec<usize>,
    q: usize,
) -> PyResult<(f64, Bound<'py, PyDict>)> {
    if let Some(&f) = fields.iter().find(|&&f| f >= 5) {
        return Err(InputError::new_err(format!(
            "fields: {f} is not a quasi-identifier index (0 to 4)"
        )));
    }
    let (t, score) = py.detach(|| leak::token_linkage(&files.0, &fields, q));
    Ok((t, linkage_dict(py, &score)?))
}

/// The quasi-identifier columns of `locale`.
#[pyfunction]
fn quasi_identifiers(locale: &str) -> PyResult<Vec<&'static str>> {
    Ok(leak::quasi_identifiers(self::locale(locale)?).to_vec())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LinkedFiles>()?;
    m.add_class::<EncodingConfig>()?;
    m.add_function(wrap_pyfunction!(key_holder_decode_records, m)?)?;
    m.add_function(wrap_pyfunction!(key_holder_decode_fields, m)?)?;
    m.add_function(wrap_pyfunction!(frequency_attack, m)?)?;
    m.add_function(wrap_pyfunction!(pattern_mining_attack, m)?)?;
    m.add_function(wrap_pyfunction!(similarity_graph, m)?)?;
    m.add_function(wrap_pyfunction!(graph_matching_attack, m)?)?;
    m.add_function(wrap_pyfunction!(attack_score, m)?)?;
    m.add_function(wrap_pyfunction!(dice, m)?)?;
    m.add_function(wrap_pyfunction!(link_greedy, m)?)?;
    m.add_function(wrap_pyfunction!(score_links, m)?)?;
    m.add_function(wrap_pyfunction!(run_attacks, m)?)?;
    m.add_function(wrap_pyfunction!(clk_linkage, m)?)?;
    m.add_function(wrap_pyfunction!(token_linkage, m)?)?;
    m.add_function(wrap_pyfunction!(quasi_identifiers, m)?)?;
    Ok(())
}
