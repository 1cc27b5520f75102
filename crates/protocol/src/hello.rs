//! What each side commits to in its hello: the protocol version, the mode, the schema and
//! parameters with their digests, and a key-check value that shows it holds the linkage key
//! without sending it.

use std::fmt;

use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ProtocolError;
use crate::mode::Mode;
use crate::session::{Role, SessionId};
use crate::wire::{WireReader, WireWriter, check_text};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// Domain-separation tag of the key-check value.
pub const KEY_CHECK_TAG: &[u8] = b"blindlink/v1/key-check";
const SCHEMA_DIGEST_TAG: &[u8] = b"blindlink/v1/schema-digest";
const PARAMETER_DIGEST_TAG: &[u8] = b"blindlink/v1/parameter-digest";

/// Most fields a schema may list.
pub const MAX_SCHEMA_FIELDS: usize = 64;
/// Longest field name or field type, in bytes.
pub const MAX_FIELD_NAME_BYTES: usize = 64;
/// Most parameters a hello may list.
pub const MAX_PARAMETERS: usize = 64;
/// Longest parameter name, in bytes.
pub const MAX_PARAMETER_NAME_BYTES: usize = 64;
/// Longest parameter value, in bytes.
pub const MAX_PARAMETER_VALUE_BYTES: usize = 256;
/// The parameter a sharded session commits to: `shard = "I/N"` (shard `I` of `N`, both
/// decimal). Both sides must run the same shard of the same count, so a difference ends the
/// handshake naming both values; an unsharded session does not set it, so a sharded and an
/// unsharded side differ too. Which records a shard holds is the party's business
/// (`blindlink_party::shard`).
pub const SHARD_PARAMETER: &str = "shard";
/// The parameter a stage of a sharded exact cascade commits to: `stage = "K/M"` (stage `K` of
/// a cascade of `M` match keys, running key `K` only over the records earlier stages left
/// unlinked). Set only by a staged run, first in the list, so that two sides on different
/// stages are told so before they are told that their `mode.keys` differ.
pub const STAGE_PARAMETER: &str = "stage";

/// One field of the linkage schema as both sides must agree on it: its name and its type
/// (e.g. `name`/`text`, `dob`/`date`). The type is free text from the schema crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDescriptor {
    /// The field's name.
    pub name: String,
    /// The field's type.
    pub kind: String,
}

/// The ordered list of fields a side encodes, and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaDescriptor {
    fields: Vec<FieldDescriptor>,
}

impl SchemaDescriptor {
    /// A schema from `(name, type)` pairs in encoding order.
    ///
    /// # Errors
    /// More than [`MAX_SCHEMA_FIELDS`] fields, an empty, over-long or duplicate name, a name or
    /// type with a control character.
    ///
    /// # Example
    /// ```
    /// use blindlink_protocol::SchemaDescriptor;
    /// let schema = SchemaDescriptor::new([("name", "text"), ("dob", "date")]).unwrap();
    /// assert_eq!(schema.fields().len(), 2);
    /// assert!(SchemaDescriptor::new([("name", "text"), ("name", "date")]).is_err());
    /// ```
    pub fn new<N: Into<String>, K: Into<String>>(
        fields: impl IntoIterator<Item = (N, K)>,
    ) -> Result<Self, ProtocolError> {
        let fields: Vec<FieldDescriptor> = fields
            .into_iter()
            .map(|(name, kind)| FieldDescriptor {
                name: name.into(),
                kind: kind.into(),
            })
            .collect();
        Self::from_fields(fields)
    }

    fn from_fields(fields: Vec<FieldDescriptor>) -> Result<Self, ProtocolError> {
        if fields.len() > MAX_SCHEMA_FIELDS {
            return Err(ProtocolError::Invalid {
                what: "schema",
                reason: format!(
                    "{} fields, over the limit of {MAX_SCHEMA_FIELDS}",
                    fields.len()
                ),
            });
        }
        for (i, field) in fields.iter().enumerate() {
            if field.name.is_empty() {
                return Err(ProtocolError::Invalid {
                    what: "schema field name",
                    reason: format!("field {} has an empty name", i + 1),
                });
            }
            check_text(&field.name, MAX_FIELD_NAME_BYTES, "schema field name")?;
            check_text(&field.kind, MAX_FIELD_NAME_BYTES, "schema field type")?;
            if fields[..i].iter().any(|f| f.name == field.name) {
                return Err(ProtocolError::Invalid {
                    what: "schema",
                    reason: format!("field '{}' is listed twice", field.name),
                });
            }
        }
        Ok(Self { fields })
    }

    /// The fields in encoding order.
    #[must_use]
    pub fn fields(&self) -> &[FieldDescriptor] {
        &self.fields
    }

    /// SHA-256 over a domain tag and the canonical encoding of the field list.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        let mut w = WireWriter::default();
        self.write(&mut w);
        let mut h = Sha256::new();
        h.update(SCHEMA_DIGEST_TAG);
        h.update([0u8]);
        h.update(&w.bytes);
        h.finalize().into()
    }

    fn write(&self, w: &mut WireWriter) {
        w.u8(u8::try_from(self.fields.len()).unwrap_or(u8::MAX));
        for f in &self.fields {
            w.text(&f.name);
            w.text(&f.kind);
        }
    }

    fn read(r: &mut WireReader<'_>) -> Result<Self, ProtocolError> {
        let count = usize::from(r.u8("schema field count")?);
        let mut fields = Vec::with_capacity(count.min(MAX_SCHEMA_FIELDS));
        for _ in 0..count {
            let name = r.text(MAX_FIELD_NAME_BYTES, "schema field name")?;
            let kind = r.text(MAX_FIELD_NAME_BYTES, "schema field type")?;
            fields.push(FieldDescriptor { name, kind });
        }
        Self::from_fields(fields)
    }

    /// Says how `theirs` differs from `self`, from this side's point of view, or `None` if they
    /// are the same.
    pub(crate) fn describe_difference(&self, theirs: &Self) -> Option<String> {
        if self == theirs {
            return None;
        }
        let find = |fields: &[FieldDescriptor], name: &str| {
            fields
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.kind.clone())
        };
        if let Some(f) = theirs
            .fields
            .iter()
            .find(|f| find(&self.fields, &f.name).is_none())
        {
            return Some(format!(
                "peer uses field '{}' that this side does not",
                f.name
            ));
        }
        if let Some(f) = self
            .fields
            .iter()
            .find(|f| find(&theirs.fields, &f.name).is_none())
        {
            return Some(format!(
                "this side uses field '{}' that the peer does not",
                f.name
            ));
        }
        for f in &self.fields {
            if let Some(kind) = find(&theirs.fields, &f.name)
                && kind != f.kind
            {
                return Some(format!(
                    "field '{}' is '{}' on this side and '{kind}' on the peer",
                    f.name, f.kind
                ));
            }
        }
        let names = |s: &Self| {
            s.fields
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Some(format!(
            "fields are in a different order (this side: {}; peer: {})",
            names(self),
            names(theirs)
        ))
    }
}

/// The encoding and matching parameters both sides must share (filter length, hash count,
/// thresholds...), as an ordered list of `name = value` texts. The list goes on the wire with
/// its digest so that a mismatch can be named; parameters are not secret.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parameters {
    entries: Vec<(String, String)>,
}

impl Parameters {
    /// Parameters from `(name, value)` pairs; the order is kept as given.
    ///
    /// # Errors
    /// More than [`MAX_PARAMETERS`] entries, an empty, over-long or duplicate name, an over-long
    /// value, or a control character.
    ///
    /// # Example
    /// ```
    /// use blindlink_protocol::Parameters;
    /// let p = Parameters::new([("filter_bits", "1024"), ("dice_threshold", "0.8")]).unwrap();
    /// assert_eq!(p.entries().len(), 2);
    /// ```
    pub fn new<N: Into<String>, V: Into<String>>(
        entries: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, ProtocolError> {
        let entries: Vec<(String, String)> = entries
            .into_iter()
            .map(|(n, v)| (n.into(), v.into()))
            .collect();
        Self::from_entries(entries)
    }

    fn from_entries(entries: Vec<(String, String)>) -> Result<Self, ProtocolError> {
        if entries.len() > MAX_PARAMETERS {
            return Err(ProtocolError::Invalid {
                what: "parameters",
                reason: format!(
                    "{} entries, over the limit of {MAX_PARAMETERS}",
                    entries.len()
                ),
            });
        }
        for (i, (name, value)) in entries.iter().enumerate() {
            if name.is_empty() {
                return Err(ProtocolError::Invalid {
                    what: "parameter name",
                    reason: format!("parameter {} has an empty name", i + 1),
                });
            }
            check_text(name, MAX_PARAMETER_NAME_BYTES, "parameter name")?;
            check_text(value, MAX_PARAMETER_VALUE_BYTES, "parameter value")?;
            if entries[..i].iter().any(|(n, _)| n == name) {
                return Err(ProtocolError::Invalid {
                    what: "parameters",
                    reason: format!("parameter '{name}' is listed twice"),
                });
            }
        }
        Ok(Self { entries })
    }

    /// The `(name, value)` pairs.
    #[must_use]
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// SHA-256 over a domain tag and the canonical encoding of the list.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        let mut w = WireWriter::default();
        self.write(&mut w);
        let mut h = Sha256::new();
        h.update(PARAMETER_DIGEST_TAG);
        h.update([0u8]);
        h.update(&w.bytes);
        h.finalize().into()
    }

    fn write(&self, w: &mut WireWriter) {
        w.u8(u8::try_from(self.entries.len()).unwrap_or(u8::MAX));
        for (n, v) in &self.entries {
            w.text(n);
            w.text(v);
        }
    }

    fn read(r: &mut WireReader<'_>) -> Result<Self, ProtocolError> {
        let count = usize::from(r.u8("parameter count")?);
        let mut entries = Vec::with_capacity(count.min(MAX_PARAMETERS));
        for _ in 0..count {
            let name = r.text(MAX_PARAMETER_NAME_BYTES, "parameter name")?;
            let value = r.text(MAX_PARAMETER_VALUE_BYTES, "parameter value")?;
            entries.push((name, value));
        }
        Self::from_entries(entries)
    }

    pub(crate) fn describe_difference(&self, theirs: &Self) -> Option<String> {
        if self == theirs {
            return None;
        }
        let find = |entries: &[(String, String)], name: &str| {
            entries
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        if let Some((n, _)) = theirs
            .entries
            .iter()
            .find(|(n, _)| find(&self.entries, n).is_none())
        {
            return Some(format!("peer sets parameter '{n}' that this side does not"));
        }
        if let Some((n, _)) = self
            .entries
            .iter()
            .find(|(n, _)| find(&theirs.entries, n).is_none())
        {
            return Some(format!(
                "this side sets parameter '{n}' that the peer does not"
            ));
        }
        for (n, v) in &self.entries {
            if let Some(theirs) = find(&theirs.entries, n)
                && &theirs != v
            {
                return Some(format!(
                    "parameter '{n}' is '{v}' on this side and '{theirs}' on the peer"
                ));
            }
        }
        Some("parameters are listed in a different order".to_owned())
    }
}

/// A key-check value: a keyed hash of a fixed tag, the session id and a role under the linkage
/// secret, so two sides can see that they hold the same secret without either sending it.
///
/// `HMAC-SHA-256(key = secret, "blindlink/v1/key-check" || 0x00 || session id || role)`.
///
/// # Security
/// The value is bound to the session id and to the sender's role, so a peer that does not hold
/// the secret can neither replay a value from another session nor reflect the other side's
/// value back. Values are compared in constant time. The secret must have high entropy
/// (`blindlink keygen` writes 256 bits): with a guessable secret, a key-check value would let a
/// peer test guesses offline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyCheck(pub(crate) [u8; 32]);

impl KeyCheck {
    /// The key-check value that `role` sends in session `session`.
    ///
    /// # Example
    /// ```
    /// use blindlink_protocol::{KeyCheck, Role, SessionId};
    /// let sid = SessionId::from_bytes([7; 16]);
    /// let a = KeyCheck::derive(b"secret", sid, Role::Initiator);
    /// assert_ne!(a, KeyCheck::derive(b"secret", sid, Role::Responder));
    /// assert_ne!(a, KeyCheck::derive(b"other", sid, Role::Initiator));
    /// ```
    #[must_use]
    pub fn derive(secret: &[u8], session: SessionId, role: Role) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("hmac accepts keys of any length"));
        mac.update(KEY_CHECK_TAG);
        mac.update(&[0u8]);
        mac.update(session.as_bytes());
        mac.update(&[role.wire_byte()]);
        Self(mac.finalize().into_bytes().into())
    }

    /// The raw value (not secret; it is what goes on the wire).
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality.
    #[must_use]
    pub fn matches(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for KeyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value is not secret, but showing it invites people to paste it around.
        f.write_str("KeyCheck(..)")
    }
}

/// What one side commits to in its hello.
#[derive(Clone, PartialEq, Eq)]
pub struct Hello {
    /// Protocol version.
    pub version: u16,
    /// The session this hello belongs to.
    pub session_id: SessionId,
    /// The mode asked for.
    pub mode: Mode,
    /// The fields this side encodes.
    pub schema: SchemaDescriptor,
    /// The digest of `schema` as the sender computed it.
    pub schema_digest: [u8; 32],
    /// The parameters this side uses.
    pub parameters: Parameters,
    /// The digest of `parameters` as the sender computed it.
    pub parameter_digest: [u8; 32],
    /// The sender's key-check value.
    pub key_check: KeyCheck,
}

impl fmt::Debug for Hello {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hello")
            .field("version", &self.version)
            .field("session_id", &self.session_id)
            .field("mode", &self.mode)
            .field("schema", &self.schema)
            .field("parameters", &self.parameters)
            .finish_non_exhaustive()
    }
}

impl Hello {
    pub(crate) fn write(&self, w: &mut WireWriter) {
        w.u16(self.version);
        w.raw(self.session_id.as_bytes());
        w.u8(self.mode.wire_byte());
        self.schema.write(w);
        w.raw(&self.schema_digest);
        self.parameters.write(w);
        w.raw(&self.parameter_digest);
        w.raw(&self.key_check.0);
    }

    /// Decodes a hello body. The version is read first: the rest of a hello of another version
    /// may have another layout, so it is reported as a version difference, not a decoding error.
    pub(crate) fn read(r: &mut WireReader<'_>) -> Result<Self, ProtocolError> {
        let version = r.u16("hello version")?;
        if version != PROTOCOL_VERSION {
            return Err(ProtocolError::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: version,
            });
        }
        let session_id = SessionId::from_bytes(r.array("hello session id")?);
        let mode = Mode::from_wire_byte(r.u8("hello mode")?)?;
        let schema = SchemaDescriptor::read(r)?;
        let schema_digest = r.array("hello schema digest")?;
        let parameters = Parameters::read(r)?;
        let parameter_digest = r.array("hello parameter digest")?;
        let key_check = KeyCheck(r.array("hello key-check value")?);
        Ok(Self {
            version,
            session_id,
            mode,
            schema,
            schema_digest,
            parameters,
            parameter_digest,
            key_check,
        })
    }
}
