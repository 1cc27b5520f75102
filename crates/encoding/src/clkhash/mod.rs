//! clkhash linkage schema v3 (JSON) and an encoder whose CLKs are byte-identical to
//! clkhash 0.18.3.
//!
//! The algorithm, as clkhash implements it: the secret goes through HKDF (SHA-256 or SHA-512,
//! the schema's salt and info) into two keys of `keySize` bytes per feature, ignored features
//! included. Each value is validated against its format, a missing-value sentinel is replaced,
//! integers and dates are canonicalised, and the comparison turns the value into tokens. Every
//! token is inserted `k` times into a filter of `l · 2^xor_folds` bits, `k` coming from the
//! strategy (`bitsPerToken`, or `bitsPerFeature` spread over the tokens with the remainder
//! going to the first ones). `blakeHash` takes the positions from keyed BLAKE2b-512 outputs
//! (salt = the decimal block index) read as little-endian `u16` modulo `l`; `doubleHash` sets
//! `(h_sha1 + i · h_md5) mod l` with HMAC-SHA1 and HMAC-MD5 read as big-endian integers, and
//! with `prevent_singularity` re-hashes `token ‖ chr(i)` until `h_md5 mod l ≠ 0`. Finally the
//! filter is XOR-folded `xor_folds` times. Bits are ordered most significant first.

mod formats;
mod json;
mod tokens;

pub(crate) use tokens::Comparison;

use base64::Engine as _;
use blake2::Blake2bMac512;
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha1::Sha1;

use crate::bits::{be_bytes_mod, xor_fold_once};
use crate::cache::{MaskCache, PositionCache, insert_tokens, or_into};
use crate::{EncodingError, LinkageSecret};
use formats::{Case, DateFormat, FieldFormat, TextEncoding};
use json::{Located, Node};

/// How many times each token is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    BitsPerToken(u32),
    BitsPerFeature(u32),
}

impl Strategy {
    /// `k` for token `index` of `count` tokens.
    fn k(self, index: usize, count: usize) -> u32 {
        match self {
            Self::BitsPerToken(k) => k,
            Self::BitsPerFeature(total) => crate::bits::token_share(total, index, count),
        }
    }

    fn max_k(self) -> u32 {
        match self {
            Self::BitsPerToken(k) | Self::BitsPerFeature(k) => k,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HashKind {
    Blake,
    Double { prevent_singularity: bool },
}

#[derive(Debug, Clone)]
struct HashedFeature {
    format: FieldFormat,
    comparison: Comparison,
    strategy: Strategy,
    hash: HashKind,
    missing: Option<(String, String)>,
}

#[derive(Debug, Clone)]
struct Feature {
    identifier: String,
    /// `None` for an ignored feature.
    hashing: Option<HashedFeature>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KdfHash {
    Sha256,
    Sha512,
}

/// A parsed clkhash linkage schema (version 3).
#[derive(Debug, Clone)]
pub struct ClkhashSchema {
    features: Vec<Feature>,
    l: usize,
    xor_folds: u32,
    kdf_hash: KdfHash,
    kdf_salt: Option<Vec<u8>>,
    kdf_info: Vec<u8>,
    key_size: usize,
    warnings: Vec<String>,
}

fn b64(node: Node<'_>) -> Result<Vec<u8>, EncodingError> {
    base64::engine::general_purpose::STANDARD
        .decode(node.str()?)
        .map_err(|e| node.error(format!("not valid base64: {e}")))
}

impl ClkhashSchema {
    /// Parses a clkhash linkage schema v3 document.
    ///
    /// # Errors
    /// [`EncodingError::Schema`] naming the JSON location (`features[2].hashing.strategy`) and
    /// the problem: invalid JSON, a version other than 3, a missing or unknown key, a value of
    /// the wrong type or range, an invalid regular expression or date format.
    pub fn parse(text: &str) -> Result<Self, EncodingError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            EncodingError::schema(
                format!("line {}, column {}", e.line(), e.column()),
                format!("invalid json: {e}"),
            )
        })?;
        let root = Located::root(&value);
        let root = root.node();
        let version = root.require("version")?;
        if version.value.as_f64() != Some(3.0) {
            return Err(version.node().error(format!(
                "clkhash schema version {} is not supported (only version 3)",
                version.value
            )));
        }
        let config = root.require("clkConfig")?;
        let config = config.node();
        let l_node = config.require("l")?;
        let l = l_node.node().int_at_least(1)?;
        if l > crate::format::MAX_FILTER_BITS as i64 {
            return Err(l_node.node().error(format!(
                "l = {l} is larger than the {} bits supported",
                crate::format::MAX_FILTER_BITS
            )));
        }
        let mut warnings = Vec::new();
        let xor_folds = match config.get("xor_folds")? {
            Some(n) => n.node().int_at_least(0)?,
            None => 0,
        };
        if config.get("xorFolds")?.is_some() {
            warnings.push(
                "clkConfig.xorFolds: clkhash 0.18.3 ignores this key (it reads 'xor_folds'), so \
                 it is ignored here too for identical CLKs; write 'xor_folds' to fold"
                    .to_owned(),
            );
        }
        if xor_folds > 16 {
            return Err(config.error(format!("xor_folds {xor_folds} is too large (at most 16)")));
        }
        let hash_l = usize::try_from(l)
            .ok()
            .and_then(|l| l.checked_mul(1 << xor_folds))
            .filter(|h| *h <= crate::format::MAX_FILTER_BITS * 16)
            .ok_or_else(|| {
                config.error(format!("l = {l} with {xor_folds} xor folds is too large"))
            })?;
        let kdf = config.require("kdf")?;
        let kdf = kdf.node();
        let kdf_type = kdf.require("type")?;
        if kdf_type.node().str()? != "HKDF" {
            return Err(kdf_type
                .node()
                .error("the only supported kdf type is 'HKDF'"));
        }
        let kdf_hash = match kdf.get("hash")? {
            None => KdfHash::Sha256,
            Some(h) => match h.node().str()? {
                "SHA256" => KdfHash::Sha256,
                "SHA512" => KdfHash::Sha512,
                other => {
                    return Err(h
                        .node()
                        .error(format!("hash '{other}' is not SHA256 or SHA512")));
                }
            },
        };
        let kdf_salt = kdf.get("salt")?.map(|s| b64(s.node())).transpose()?;
        let kdf_info = kdf
            .get("info")?
            .map(|s| b64(s.node()))
            .transpose()?
            .unwrap_or_default();
        let key_size = match kdf.get("keySize")? {
            Some(k) => k.node().int_at_least(1)? as usize,
            None => 64,
        };
        let features_node = root.require("features")?;
        let mut features = Vec::new();
        let mut problems = Vec::new();
        for item in features_node.node().items()? {
            // Every feature is checked, so `schema check` lists all broken features at once.
            match parse_feature(item.node()) {
                Ok(feature) => features.push(feature),
                Err(e) => problems.push(e),
            }
        }
        if let Some(e) = EncodingError::combine(problems) {
            return Err(e);
        }
        let schema = Self {
            features,
            l: l as usize,
            xor_folds: xor_folds as u32,
            kdf_hash,
            kdf_salt,
            kdf_info,
            key_size,
            warnings,
        };
        schema.check_hash_constraints(hash_l, features_node.node())?;
        Ok(schema)
    }

    fn check_hash_constraints(
        &self,
        hash_l: usize,
        features: Node<'_>,
    ) -> Result<(), EncodingError> {
        let max_keys = match self.kdf_hash {
            KdfHash::Sha256 => 255 * 32,
            KdfHash::Sha512 => 255 * 64,
        };
        if self.features.len() * 2 * self.key_size > max_keys {
            return Err(EncodingError::schema(
                "clkConfig.kdf",
                format!(
                    "HKDF cannot derive {} keys of {} bytes (at most {max_keys} bytes)",
                    self.features.len() * 2,
                    self.key_size
                ),
            ));
        }
        for (i, f) in self.features.iter().enumerate() {
            if let Some(h) = &f.hashing
                && h.hash == HashKind::Blake
            {
                if !hash_l.is_power_of_two() {
                    return Err(EncodingError::schema(
                        format!("{}[{i}].hashing.hash", features.path()),
                        format!(
                            "blakeHash needs a filter length that is a power of two, but l · 2^xor_folds = {hash_l}"
                        ),
                    ));
                }
                if self.key_size > 64 {
                    return Err(EncodingError::schema(
                        "clkConfig.kdf.keySize",
                        format!(
                            "blakeHash keys are at most 64 bytes, keySize is {}",
                            self.key_size
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The feature identifiers, which are also the expected CSV header, in order.
    pub fn identifiers(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.identifier.as_str())
    }

    /// The identifiers of the features that are hashed (not ignored).
    pub fn hashed_identifiers(&self) -> impl Iterator<Item = &str> {
        self.features
            .iter()
            .filter(|f| f.hashing.is_some())
            .map(|f| f.identifier.as_str())
    }

    /// CLK length in bits after folding (`l`).
    #[must_use]
    pub fn filter_bits(&self) -> usize {
        self.l
    }

    /// Keys that clkhash 0.18.3 accepts but silently ignores; worth telling the user.
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// One line per feature, for `blindlink schema check`.
    #[must_use]
    pub fn describe_features(&self) -> Vec<String> {
        self.features
            .iter()
            .map(|f| match &f.hashing {
                None => format!("{}: ignored", f.identifier),
                Some(h) => format!(
                    "{}: {:?}, {:?}, {:?}, {}",
                    f.identifier,
                    h.comparison,
                    h.strategy,
                    h.hash,
                    h.format.encoding().name()
                ),
            })
            .collect()
    }
}

fn parse_feature(node: Node<'_>) -> Result<Feature, EncodingError> {
    let identifier = node.require("identifier")?.node().str()?.to_owned();
    let ignored = match node.get("ignored")? {
        Some(i) => i.node().bool()?,
        None => false,
    };
    if ignored {
        node.only_keys(&["identifier", "ignored", "description"])?;
        return Ok(Feature {
            identifier,
            hashing: None,
        });
    }
    let format = parse_format(node.require("format")?.node())?;
    let hashing = node.require("hashing")?;
    let hashing = hashing.node();
    hashing.only_keys(&["comparison", "strategy", "hash", "missingValue"])?;
    let comparison = parse_comparison(hashing.require("comparison")?.node())?;
    let strategy_node = hashing.require("strategy")?;
    let strategy_node = strategy_node.node();
    let strategy_keys: Vec<&String> = strategy_node.object()?.keys().collect();
    let strategy = match strategy_keys.as_slice() {
        [key] if *key == "bitsPerToken" => {
            Strategy::BitsPerToken(bits(strategy_node.require(key)?.node())?)
        }
        [key] if *key == "bitsPerFeature" => {
            Strategy::BitsPerFeature(bits(strategy_node.require(key)?.node())?)
        }
        _ => {
            return Err(
                strategy_node.error("expected exactly one of 'bitsPerToken' or 'bitsPerFeature'")
            );
        }
    };
    let hash = match hashing.get("hash")? {
        None => HashKind::Blake,
        Some(h) => {
            let h = h.node();
            let kind = h.require("type")?;
            let singular = h.get("prevent_singularity")?;
            match kind.node().str()? {
                "blakeHash" => {
                    if singular.is_some() {
                        return Err(
                            h.error("prevent_singularity must only be specified with doubleHash")
                        );
                    }
                    HashKind::Blake
                }
                "doubleHash" => HashKind::Double {
                    prevent_singularity: singular
                        .map(|s| s.node().bool())
                        .transpose()?
                        .unwrap_or(false),
                },
                other => {
                    return Err(kind.node().error(format!(
                        "unsupported hash type '{other}' (blakeHash or doubleHash)"
                    )));
                }
            }
        }
    };
    let missing = match hashing.get("missingValue")? {
        None => None,
        Some(m) => {
            let m = m.node();
            let sentinel = m.require("sentinel")?.node().str()?.to_owned();
            let replace = match m.get("replaceWith")? {
                Some(r) => r.node().str()?.to_owned(),
                None => sentinel.clone(),
            };
            Some((sentinel, replace))
        }
    };
    Ok(Feature {
        identifier,
        hashing: Some(HashedFeature {
            format,
            comparison,
            strategy,
            hash,
            missing,
        }),
    })
}

fn bits(node: Node<'_>) -> Result<u32, EncodingError> {
    let v = node.int_at_least(1)?;
    u32::try_from(v)
        .ok()
        .filter(|v| *v <= 4096)
        .ok_or_else(|| node.error(format!("{v} bits is more than the 4096 supported")))
}

fn parse_format(node: Node<'_>) -> Result<FieldFormat, EncodingError> {
    let kind = node.require("type")?;
    match kind.node().str()? {
        "string" => {
            let encoding = match node.get("encoding")? {
                None => TextEncoding::Utf8,
                Some(e) => TextEncoding::parse(e.node().str()?).ok_or_else(|| {
                    e.node()
                        .error("encoding must be one of ascii, utf-8, utf-16, utf-32")
                })?,
            };
            if let Some(p) = node.get("pattern")? {
                node.only_keys(&["type", "encoding", "pattern", "description"])?;
                let text = p.node().str()?.to_owned();
                let regex = regex::RegexBuilder::new(&format!(r"\A(?:{text})\z"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        p.node()
                            .error(format!("invalid regular expression '{text}': {e}"))
                    })?;
                return Ok(FieldFormat::String {
                    encoding,
                    pattern: Some((text, regex)),
                    case: Case::Mixed,
                    min_length: None,
                    max_length: None,
                });
            }
            node.only_keys(&[
                "type",
                "encoding",
                "case",
                "minLength",
                "maxLength",
                "description",
            ])?;
            let case = match node.get("case")? {
                None => Case::Mixed,
                Some(c) => match c.node().str()? {
                    "upper" => Case::Upper,
                    "lower" => Case::Lower,
                    "mixed" => Case::Mixed,
                    other => {
                        return Err(c
                            .node()
                            .error(format!("case '{other}' is not upper, lower or mixed")));
                    }
                },
            };
            let min_length = node
                .get("minLength")?
                .map(|n| n.node().int_at_least(0))
                .transpose()?;
            let max_length = node
                .get("maxLength")?
                .map(|n| n.node().int_at_least(1))
                .transpose()?;
            Ok(FieldFormat::String {
                encoding,
                pattern: None,
                case,
                min_length: min_length.map(|v| v as usize),
                max_length: max_length.map(|v| v as usize),
            })
        }
        "integer" => {
            node.only_keys(&["type", "minimum", "maximum", "description"])?;
            let minimum = node.get("minimum")?.map(|n| n.node().int()).transpose()?;
            let maximum = node.get("maximum")?.map(|n| n.node().int()).transpose()?;
            Ok(FieldFormat::Integer {
                minimum: minimum.map(i128::from),
                maximum: maximum.map(i128::from),
            })
        }
        "date" => {
            node.only_keys(&["type", "format", "description"])?;
            let f = node.require("format")?;
            let format = DateFormat::compile(f.node().str()?).map_err(|e| f.node().error(e))?;
            Ok(FieldFormat::Date(format))
        }
        "enum" => {
            node.only_keys(&["type", "values", "description"])?;
            let values = node
                .require("values")?
                .node()
                .items()?
                .iter()
                .map(|v| v.node().str().map(str::to_owned))
                .collect::<Result<_, _>>()?;
            Ok(FieldFormat::Enum { values })
        }
        other => Err(kind.node().error(format!(
            "format type '{other}' is not string, integer, date or enum"
        ))),
    }
}

fn parse_comparison(node: Node<'_>) -> Result<Comparison, EncodingError> {
    let kind = node.require("type")?;
    match kind.node().str()? {
        "ngram" => {
            let n = node.require("n")?.node().int_at_least(1)?;
            if n > 64 {
                return Err(node.error(format!("n = {n} is larger than the 64 supported")));
            }
            let positional = node
                .get("positional")?
                .map(|p| p.node().bool())
                .transpose()?
                .unwrap_or(false);
            Ok(Comparison::Ngram {
                n: n as usize,
                positional,
            })
        }
        "exact" => Ok(Comparison::Exact),
        "numeric" => {
            let threshold = node.require("thresholdDistance")?.node().number()?;
            let resolution = node.require("resolution")?.node().int()?;
            let precision = match node.get("fractional_precision")? {
                Some(p) => p.node().int()?,
                None => 0,
            };
            Comparison::numeric(threshold, resolution, precision).map_err(|e| node.error(e))
        }
        other => Err(kind.node().error(format!(
            "unsupported comparison '{other}' (ngram, exact or numeric)"
        ))),
    }
}

/// Keyed hashing of one feature, with the key material already absorbed.
// One per feature, built once per encoder: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum FeatureHasher {
    /// One keyed BLAKE2b state per salt (block index), cloned per token.
    Blake(Vec<Blake2bMac512>),
    Double {
        sha1: Hmac<Sha1>,
        md5: Hmac<Md5>,
        prevent_singularity: bool,
    },
}

impl FeatureHasher {
    /// Appends the `k` bit positions of `token` in a filter of `l` bits.
    fn positions(&self, token: &[u8], k: u32, l: usize, out: &mut Vec<u32>) {
        match self {
            Self::Blake(states) => {
                let mut remaining = k as usize;
                for state in states {
                    if remaining == 0 {
                        break;
                    }
                    let mut mac = state.clone();
                    mac.update(token);
                    let digest = mac.finalize().into_bytes();
                    for pair in digest.chunks_exact(2).take(remaining) {
                        let short = u16::from_le_bytes([pair[0], pair[1]]) as usize;
                        out.push((short % l) as u32);
                    }
                    remaining = remaining.saturating_sub(32);
                }
            }
            Self::Double {
                sha1,
                md5,
                prevent_singularity,
            } => {
                let l64 = l as u64;
                let mut h1 = sha1.clone();
                h1.update(token);
                let sha1hm = be_bytes_mod(&h1.finalize().into_bytes(), l64);
                let mut h2 = md5.clone();
                h2.update(token);
                let mut md5hm = be_bytes_mod(&h2.finalize().into_bytes(), l64);
                if *prevent_singularity {
                    // Python appends chr(i).encode(): the UTF-8 bytes of code point i.
                    let mut i: u32 = 0;
                    let mut utf8 = [0u8; 4];
                    while md5hm == 0 {
                        let suffix = char::from_u32(i).unwrap_or(' ').encode_utf8(&mut utf8);
                        let mut h = md5.clone();
                        h.update(token);
                        h.update(suffix.as_bytes());
                        md5hm = be_bytes_mod(&h.finalize().into_bytes(), l64);
                        i += 1;
                    }
                }
                for i in 0..u64::from(k) {
                    out.push(((sha1hm + i * md5hm) % l64) as u32);
                }
            }
        }
    }
}

/// Encodes records with a [`ClkhashSchema`]; cheap to share between threads.
#[derive(Clone)]
pub struct ClkhashEncoder {
    schema: ClkhashSchema,
    hashers: Vec<Option<FeatureHasher>>,
    hash_l: usize,
}

impl std::fmt::Debug for ClkhashEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClkhashEncoder")
            .field("features", &self.schema.features.len())
            .finish_non_exhaustive()
    }
}

/// Per-thread scratch space of a [`ClkhashEncoder`].
#[derive(Default)]
pub struct ClkhashScratch {
    chars: Vec<char>,
    token: String,
    token_bytes: Vec<u8>,
    token_ends: Vec<usize>,
    filter: Vec<u8>,
    field_filter: Vec<u8>,
    caches: Vec<PositionCache>,
    masks: Vec<MaskCache>,
}

impl std::fmt::Debug for ClkhashScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClkhashScratch")
    }
}

fn derive_keys(
    schema: &ClkhashSchema,
    secret: &LinkageSecret,
) -> Result<zeroize::Zeroizing<Vec<u8>>, EncodingError> {
    let mut okm = zeroize::Zeroizing::new(vec![0u8; schema.features.len() * 2 * schema.key_size]);
    let salt = schema.kdf_salt.as_deref();
    let result = match schema.kdf_hash {
        KdfHash::Sha256 => hkdf::Hkdf::<sha2::Sha256>::new(salt, secret.expose())
            .expand(&schema.kdf_info, &mut okm),
        KdfHash::Sha512 => hkdf::Hkdf::<sha2::Sha512>::new(salt, secret.expose())
            .expand(&schema.kdf_info, &mut okm),
    };
    result.map_err(|_| EncodingError::schema("clkConfig.kdf", "HKDF output is too long"))?;
    Ok(okm)
}

impl ClkhashEncoder {
    /// Derives the per-feature keys from `secret` as clkhash does.
    ///
    /// # Errors
    /// [`EncodingError::Schema`] when the keys cannot be derived (too many features for HKDF).
    ///
    /// # Security
    /// The derived keys live only inside the hash states; the HKDF output buffer is zeroized.
    pub fn new(schema: &ClkhashSchema, secret: &LinkageSecret) -> Result<Self, EncodingError> {
        let keys = derive_keys(schema, secret)?;
        let ks = schema.key_size;
        let mut hashers = Vec::with_capacity(schema.features.len());
        for (i, feature) in schema.features.iter().enumerate() {
            let first = &keys[2 * i * ks..(2 * i + 1) * ks];
            let second = &keys[(2 * i + 1) * ks..(2 * i + 2) * ks];
            let hasher = match &feature.hashing {
                None => None,
                Some(h) => Some(match h.hash {
                    HashKind::Blake => {
                        let blocks = h.strategy.max_k().div_ceil(32) as usize;
                        let states = (0..blocks)
                            .map(|b| {
                                Blake2bMac512::new_with_salt_and_personal(
                                    Some(first),
                                    b.to_string().as_bytes(),
                                    &[],
                                )
                                .map_err(|_| {
                                    EncodingError::schema(
                                        "clkConfig.kdf.keySize",
                                        "invalid blake2b key size",
                                    )
                                })
                            })
                            .collect::<Result<_, _>>()?;
                        FeatureHasher::Blake(states)
                    }
                    HashKind::Double {
                        prevent_singularity,
                    } => FeatureHasher::Double {
                        sha1: <Hmac<Sha1> as KeyInit>::new_from_slice(first).map_err(|_| {
                            EncodingError::schema("clkConfig.kdf.keySize", "invalid hmac key size")
                        })?,
                        md5: <Hmac<Md5> as KeyInit>::new_from_slice(second).map_err(|_| {
                            EncodingError::schema("clkConfig.kdf.keySize", "invalid hmac key size")
                        })?,
                        prevent_singularity,
                    },
                }),
            };
            hashers.push(hasher);
        }
        Ok(Self {
            schema: schema.clone(),
            hashers,
            hash_l: schema.l << schema.xor_folds,
        })
    }

    /// The schema this encoder was built from.
    #[must_use]
    pub fn schema(&self) -> &ClkhashSchema {
        &self.schema
    }

    /// Bytes per CLK.
    #[must_use]
    pub fn bytes_per_clk(&self) -> usize {
        self.schema.l.div_ceil(8)
    }

    /// Encodes one record (one value per feature, ignored ones included) into `out`
    /// (`bytes_per_clk()` bytes). With `field_popcounts`, also records the bits each hashed
    /// feature sets on its own (before folding).
    ///
    /// # Errors
    /// [`EncodingError::RecordLength`] for a record with the wrong number of values, and
    /// [`EncodingError::InvalidValue`] naming the feature whose value violates its format.
    pub fn encode(
        &self,
        values: &[&str],
        scratch: &mut ClkhashScratch,
        out: &mut [u8],
        mut field_popcounts: Option<&mut Vec<u32>>,
    ) -> Result<(), EncodingError> {
        let features = &self.schema.features;
        if values.len() != features.len() {
            return Err(EncodingError::RecordLength {
                expected: features.len(),
                found: values.len(),
            });
        }
        if scratch.caches.len() != features.len() {
            scratch.caches = features.iter().map(|_| PositionCache::default()).collect();
            scratch.masks = features.iter().map(|_| MaskCache::default()).collect();
        }
        let filter_bytes = self.hash_l.div_ceil(8);
        scratch.filter.clear();
        scratch.filter.resize(filter_bytes, 0);
        if let Some(p) = field_popcounts.as_deref_mut() {
            p.clear();
        }
        let ClkhashScratch {
            chars,
            token,
            token_bytes,
            token_ends,
            filter,
            field_filter,
            caches,
            masks,
        } = scratch;
        for (i, (feature, value)) in features.iter().zip(values).enumerate() {
            let (Some(h), Some(hasher)) = (&feature.hashing, &self.hashers[i]) else {
                continue;
            };
            // A value seen before (and encoded without error) sets the same bits again.
            if let Some(mask) = masks[i].get(value.as_bytes()) {
                or_into(filter, mask);
                if let Some(p) = field_popcounts.as_deref_mut() {
                    p.push(crate::bits::popcount(mask));
                }
                continue;
            }
            let canonical = match &h.missing {
                Some((sentinel, replacement)) if sentinel == value => {
                    std::borrow::Cow::Borrowed(replacement.as_str())
                }
                _ => {
                    h.format
                        .validate(value)
                        .map_err(|r| EncodingError::invalid(&feature.identifier, r))?;
                    h.format
                        .canonical(value)
                        .map_err(|r| EncodingError::invalid(&feature.identifier, r))?
                }
            };
            token_bytes.clear();
            token_ends.clear();
            let encoding = h.format.encoding();
            let mut unencodable = false;
            h.comparison
                .tokens(&canonical, chars, token, |t| {
                    unencodable |= !encoding.encode_into(t, token_bytes);
                    token_ends.push(token_bytes.len());
                })
                .map_err(|r| EncodingError::invalid(&feature.identifier, r))?;
            if unencodable {
                return Err(EncodingError::invalid(
                    &feature.identifier,
                    format!("'{canonical}' cannot be encoded in {}", encoding.name()),
                ));
            }
            field_filter.clear();
            field_filter.resize(filter_bytes, 0);
            insert_tokens(
                token_bytes,
                token_ends,
                &[],
                &mut caches[i],
                field_filter,
                |t, count| h.strategy.k(t, count),
                |bytes, k, p| hasher.positions(bytes, k, self.hash_l, p),
            );
            if let Some(p) = field_popcounts.as_deref_mut() {
                p.push(crate::bits::popcount(field_filter));
            }
            or_into(filter, field_filter);
            masks[i].insert(value.as_bytes(), field_filter);
        }
        let mut bits = self.hash_l;
        for _ in 0..self.schema.xor_folds {
            xor_fold_once(filter, bits);
            bits /= 2;
        }
        out.copy_from_slice(&filter[..self.bytes_per_clk()]);
        Ok(())
    }
}
