//! The native encoder: a [`NativeSchema`] made ready (per-field keys, keyed permutations,
//! BLIP's fresh seed) and applied to one record at a time.

use crate::bits::{get_bit, popcount, set_bit};
use crate::cache::{MaskCache, PositionCache, insert_tokens, or_into};
use crate::harden::{self, HardeningStep, PreparedStep};
use crate::keyed::{DerivedKey, KeyedStream, TokenHasher};
use crate::{EncodingError, LinkageSecret};

use super::{Layout, NativeSchema};

/// Encodes records with a [`NativeSchema`]; cheap to share between threads.
#[derive(Clone)]
pub struct NativeEncoder {
    schema: NativeSchema,
    pub(crate) hashers: Vec<TokenHasher>,
    /// Bit offset of each field's own filter in the working buffer.
    pub(crate) offsets: Vec<usize>,
    /// `rbf`: for each record bit, the (working-buffer) bit it is sampled from.
    pub(crate) rbf_map: Vec<u32>,
    steps: Vec<PreparedStep>,
    /// BLIP's per-encoder seed (fresh from the OS unless the caller chose one); `None`
    /// without a BLIP step.
    blip_seed: Option<std::sync::Arc<zeroize::Zeroizing<[u8; 32]>>>,
}

impl std::fmt::Debug for NativeEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeEncoder")
            .field("fields", &self.schema.fields.len())
            .finish_non_exhaustive()
    }
}

/// Per-thread scratch space of a [`NativeEncoder`].
#[derive(Default)]
pub struct NativeScratch {
    normalised: String,
    normalise_scratch: String,
    chars: Vec<char>,
    token: String,
    token_bytes: Vec<u8>,
    token_ends: Vec<usize>,
    work: Vec<u8>,
    field_filter: Vec<u8>,
    mask_key: Vec<u8>,
    caches: Vec<PositionCache>,
    masks: Vec<MaskCache>,
}

impl std::fmt::Debug for NativeScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NativeScratch")
    }
}

impl NativeEncoder {
    /// Derives the per-field keys and the keyed permutations from `secret`; a BLIP step gets a
    /// fresh 32-byte seed from the operating system's RNG.
    ///
    /// # Security
    /// Field keys are `HMAC-SHA3-256(secret, "blindlink/v1/field-key" ‖ 0 ‖ column)`; token
    /// positions are independent HMAC-SHA3-512 outputs under the field key. Nothing derived
    /// is ever printed. BLIP's flips are *not* derived from `secret` (the peer holds it too):
    /// see [`NativeEncoder::with_blip_seed`].
    ///
    /// # Errors
    /// [`EncodingError::Randomness`] when the schema has a BLIP step and the OS RNG fails.
    pub fn new(schema: &NativeSchema, secret: &LinkageSecret) -> Result<Self, EncodingError> {
        let hashers = schema
            .fields
            .iter()
            .map(|f| {
                TokenHasher::new(&DerivedKey::derive(
                    secret,
                    "field-key",
                    f.column.as_bytes(),
                ))
            })
            .collect();
        let mut offsets = Vec::new();
        let mut offset = 0;
        for f in &schema.fields {
            offsets.push(offset);
            offset += match schema.layout {
                Layout::Clk => 0,
                Layout::Rbf | Layout::PerField => f.own_bits,
            };
        }
        let rbf_map = if schema.layout == Layout::Rbf {
            let key = DerivedKey::derive(secret, "rbf-sampling", b"");
            let mut stream = KeyedStream::new(&key, 0);
            let mut map = Vec::with_capacity(schema.bits);
            for (f, &start) in schema.fields.iter().zip(&offsets) {
                for _ in 0..f.rbf_sample {
                    map.push((start + stream.below(f.own_bits as u64) as usize) as u32);
                }
            }
            let order = stream.permutation(map.len());
            order.iter().map(|&i| map[i as usize]).collect()
        } else {
            Vec::new()
        };
        let mut steps = Vec::new();
        let mut length = schema.bits;
        let mut blip_seed = None;
        for (i, step) in schema.hardening.iter().enumerate() {
            let label = (i as u64).to_le_bytes();
            match step {
                HardeningStep::XorFold { times } => {
                    for _ in 0..*times {
                        steps.push(PreparedStep::XorFold);
                        length /= 2;
                    }
                }
                HardeningStep::Balance => {
                    let key = DerivedKey::derive(secret, "balance", &label);
                    steps.push(PreparedStep::Balance(
                        KeyedStream::new(&key, 0).permutation(2 * length),
                    ));
                    length *= 2;
                }
                HardeningStep::Permute => {
                    let key = DerivedKey::derive(secret, "permute", &label);
                    steps.push(PreparedStep::Permute(
                        KeyedStream::new(&key, 0).permutation(length),
                    ));
                }
                HardeningStep::Rule90 => steps.push(PreparedStep::Rule90),
                HardeningStep::Blip { epsilon } => {
                    if blip_seed.is_none() {
                        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
                        getrandom::fill(seed.as_mut())
                            .map_err(|e| EncodingError::Randomness(e.to_string()))?;
                        blip_seed = Some(std::sync::Arc::new(seed));
                    }
                    steps.push(PreparedStep::Blip {
                        flip_probability: harden::blip_flip_probability(*epsilon),
                        step_index: i as u64,
                    });
                }
                HardeningStep::Salt { .. } => {}
            }
        }
        Ok(Self {
            schema: schema.clone(),
            hashers,
            offsets,
            rbf_map,
            steps,
            blip_seed,
        })
    }

    /// Replaces BLIP's seed: the caller's CSPRNG output, or a fixed value where a test needs
    /// reproducible flips. Without a BLIP step this changes nothing.
    ///
    /// # Security
    /// The flips protect only while the seed stays with the encoding party: never derive it
    /// from the linkage secret or anything else the peer knows, and draw a new one per run.
    #[must_use]
    pub fn with_blip_seed(mut self, seed: [u8; 32]) -> Self {
        if self.blip_seed.is_some() {
            self.blip_seed = Some(std::sync::Arc::new(zeroize::Zeroizing::new(seed)));
        }
        self
    }

    /// The schema this encoder was built from.
    #[must_use]
    pub fn schema(&self) -> &NativeSchema {
        &self.schema
    }

    /// Bytes per CLK.
    #[must_use]
    pub fn bytes_per_clk(&self) -> usize {
        self.schema.output_bits().div_ceil(8)
    }

    /// Encodes one record: `values` in the order of [`NativeSchema::columns`]. `record_index`
    /// selects BLIP's ChaCha20 stream under the encoder's seed (deterministic for one encoder
    /// and record number, whatever the thread).
    /// With `field_popcounts`, also records the bits each field sets in its own space.
    ///
    /// # Errors
    /// [`EncodingError::RecordLength`] for the wrong number of values,
    /// [`EncodingError::InvalidValue`] naming the column when normalisation rejects a value or
    /// a missing value is not allowed.
    pub fn encode(
        &self,
        values: &[&str],
        record_index: u64,
        scratch: &mut NativeScratch,
        out: &mut [u8],
        mut field_popcounts: Option<&mut Vec<u32>>,
    ) -> Result<(), EncodingError> {
        let fields = &self.schema.fields;
        let expected = fields.len() + usize::from(self.schema.salt_column().is_some());
        if values.len() != expected {
            return Err(EncodingError::RecordLength {
                expected,
                found: values.len(),
            });
        }
        let salt = if expected > fields.len() {
            values[fields.len()].trim().as_bytes()
        } else {
            &[][..]
        };
        if scratch.caches.len() != fields.len() {
            scratch.caches = fields.iter().map(|_| PositionCache::default()).collect();
            scratch.masks = fields.iter().map(|_| MaskCache::default()).collect();
        }
        let work_bits = match self.schema.layout {
            Layout::Clk => self.schema.bits,
            Layout::Rbf | Layout::PerField => fields.iter().map(|f| f.own_bits).sum(),
        };
        scratch.work.clear();
        scratch.work.resize(work_bits.div_ceil(8), 0);
        if let Some(p) = field_popcounts.as_deref_mut() {
            p.clear();
        }
        let NativeScratch {
            normalised,
            normalise_scratch,
            chars,
            token,
            token_bytes,
            token_ends,
            work,
            field_filter,
            mask_key,
            caches,
            masks,
        } = scratch;
        for (i, (field, raw)) in fields.iter().zip(values).enumerate() {
            // The mask cache is keyed by the raw value (and the salt): normalisation,
            // tokenising and hashing are deterministic functions of both.
            mask_key.clear();
            mask_key.extend_from_slice(&(salt.len() as u32).to_le_bytes());
            mask_key.extend_from_slice(salt);
            mask_key.extend_from_slice(raw.as_bytes());
            if let Some(mask) = masks[i].get(mask_key) {
                place(work, self.offsets[i], field.own_bits, mask);
                if let Some(p) = field_popcounts.as_deref_mut() {
                    p.push(popcount(mask));
                }
                continue;
            }
            let text = field.text(raw, normalised, normalise_scratch)?;
            token_bytes.clear();
            token_ends.clear();
            field.tokens(text, chars, token, |t| {
                token_bytes.extend_from_slice(t.as_bytes());
                token_ends.push(token_bytes.len());
            })?;
            field_filter.clear();
            field_filter.resize(field.own_bits.div_ceil(8), 0);
            let hasher = &self.hashers[i];
            insert_tokens(
                token_bytes,
                token_ends,
                salt,
                &mut caches[i],
                field_filter,
                |t, count| field.weight.k(t, count),
                |bytes, k, p| hasher.positions(salt, bytes, k, field.own_bits, p),
            );
            if let Some(p) = field_popcounts.as_deref_mut() {
                p.push(popcount(field_filter));
            }
            place(work, self.offsets[i], field.own_bits, field_filter);
            masks[i].insert(mask_key, field_filter);
        }
        let mut filter = if self.schema.layout == Layout::Rbf {
            let mut record = vec![0u8; self.schema.bits.div_ceil(8)];
            for (j, &source) in self.rbf_map.iter().enumerate() {
                if get_bit(work, source as usize) {
                    set_bit(&mut record, j);
                }
            }
            record
        } else {
            std::mem::take(work)
        };
        let mut length = self.schema.bits;
        for step in &self.steps {
            filter = match step {
                PreparedStep::XorFold => {
                    let f = harden::xor_fold(&filter, length);
                    length /= 2;
                    f
                }
                PreparedStep::Balance(perm) => {
                    let f = harden::balance(&filter, length, perm);
                    length *= 2;
                    f
                }
                PreparedStep::Permute(perm) => harden::permute(&filter, length, perm),
                PreparedStep::Rule90 => harden::rule90(&filter, length),
                PreparedStep::Blip {
                    flip_probability,
                    step_index,
                } => {
                    if let Some(seed) = &self.blip_seed {
                        // Stream = record, word offset = step: every (record, step) draws
                        // from its own part of the keystream (2^36 words per step).
                        let mut rng =
                            <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed(
                                **seed.as_ref(),
                            );
                        rng.set_stream(record_index);
                        rng.set_word_pos(u128::from(*step_index) << 36);
                        harden::blip(&mut filter, length, *flip_probability, &mut rng);
                    }
                    filter
                }
            };
        }
        out.copy_from_slice(&filter[..self.bytes_per_clk()]);
        if self.schema.layout != Layout::Rbf && self.steps.is_empty() {
            // Give the buffer back to the scratch space for the next record.
            *work = filter;
        }
        Ok(())
    }
}

/// ORs a field's own filter (`bits` bits) into the working buffer at bit `offset`.
fn place(work: &mut [u8], offset: usize, bits: usize, field: &[u8]) {
    if offset.is_multiple_of(8) {
        or_into(&mut work[offset / 8..], field);
    } else {
        for i in (0..bits).filter(|&i| get_bit(field, i)) {
            set_bit(work, offset + i);
        }
    }
}
