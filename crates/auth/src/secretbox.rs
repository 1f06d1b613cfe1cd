//! Encryption at rest: AES-256-GCM under a named master key, bound to where the value is
//! stored.
//!
//! Blob layout (self-describing, version 1):
//!
//! ```text
//! 0x01 | key id length (1 byte) | key id (ASCII) | nonce (12 bytes) | ciphertext ‖ tag (16 bytes)
//! ```
//!
//! The nonce is random per seal (96 bits; at well under 2^32 seals per key the collision
//! risk is negligible). The associated data is the blob header (version and key id)
//! followed by a domain label and the length-prefixed table, row id and column of
//! [`Aad`], so a blob copied to another row or column, or relabelled with another key id,
//! fails to open.
//!
//! A [`Keyring`] holds the current master key, used to seal, and old ones kept to open
//! blobs sealed before a rotation. `bourse keys rotate-master` walks the sealed columns,
//! and for each blob where [`needs_rotation`] is true calls [`reseal`].

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use secrecy::SecretString;
use zeroize::Zeroizing;

/// The first byte of every blob.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes of a master key (AES-256).
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
const MAX_KEY_ID_LEN: usize = 64;
/// Largest plaintext accepted by [`seal`] (secrets are small; this bounds memory).
pub const MAX_PLAINTEXT_BYTES: usize = 1 << 20;
const AAD_DOMAIN: &[u8] = b"bourse.secretbox.v1";

/// Why sealing, opening or loading a key failed. Never contains key or plaintext bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretBoxError {
    /// A key id must be 1 to 64 characters of `A-Z a-z 0-9 . _ -`.
    #[error("invalid master key id")]
    InvalidKeyId,
    /// Key material of the wrong length, or a key file that does not parse.
    #[error("invalid master key")]
    InvalidKey,
    /// Two keys of a keyring share an id.
    #[error("duplicate master key id `{0}`")]
    DuplicateKeyId(String),
    /// The plaintext is larger than [`MAX_PLAINTEXT_BYTES`].
    #[error("plaintext too large to seal")]
    TooLarge,
    /// Not a blob of a known version.
    #[error("malformed sealed value")]
    Malformed,
    /// Sealed under a key id that is not in the keyring.
    #[error("sealed under unknown master key `{0}`")]
    UnknownKey(String),
    /// Authentication failed: wrong key, wrong table/row/column, or tampering.
    #[error("sealed value does not open (wrong key, wrong place or tampered)")]
    Decrypt,
    /// The cipher refused to encrypt (cannot happen under the size limit).
    #[error("encryption failed")]
    Encrypt,
}

fn check_key_id(id: &str) -> Result<(), SecretBoxError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SecretBoxError::InvalidKeyId)
    }
}

/// A 256-bit master key with its id, zeroized on drop. `Debug` shows only the id.
pub struct MasterKey {
    id: String,
    key: Zeroizing<[u8; KEY_BYTES]>,
}

impl MasterKey {
    /// A new random key named `id` (1 to 64 of `A-Z a-z 0-9 . _ -`).
    pub fn generate(id: impl Into<String>) -> Result<Self, SecretBoxError> {
        let id = id.into();
        check_key_id(&id)?;
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        rand::rng().fill_bytes(key.as_mut());
        Ok(Self { id, key })
    }

    /// A key from its 32 raw bytes.
    pub fn from_bytes(id: impl Into<String>, key: &[u8]) -> Result<Self, SecretBoxError> {
        let id = id.into();
        check_key_id(&id)?;
        let key: [u8; KEY_BYTES] = key.try_into().map_err(|_| SecretBoxError::InvalidKey)?;
        Ok(Self {
            id,
            key: Zeroizing::new(key),
        })
    }

    /// The key id written into every blob sealed with this key.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key file text, `<id>:<base64 of the key>` and a newline. Writing it (mode 0600)
    /// is the caller's job.
    pub fn to_file_contents(&self) -> SecretString {
        let encoded = Zeroizing::new(STANDARD.encode(*self.key));
        SecretString::from(format!("{}:{}\n", self.id, encoded.as_str()))
    }

    /// Parses [`MasterKey::to_file_contents`] (surrounding whitespace ignored). Also the
    /// format of a key given through the environment.
    pub fn from_file_contents(contents: &str) -> Result<Self, SecretBoxError> {
        let (id, encoded) = contents
            .trim()
            .split_once(':')
            .ok_or(SecretBoxError::InvalidKey)?;
        let raw = Zeroizing::new(
            STANDARD
                .decode(encoded)
                .map_err(|_| SecretBoxError::InvalidKey)?,
        );
        Self::from_bytes(id, &raw)
    }

    fn cipher(&self) -> Result<Aes256Gcm, SecretBoxError> {
        Aes256Gcm::new_from_slice(self.key.as_ref()).map_err(|_| SecretBoxError::InvalidKey)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The master keys in use: `current` seals, `current` and `old` open.
#[derive(Debug)]
pub struct Keyring {
    current: MasterKey,
    old: Vec<MasterKey>,
}

impl Keyring {
    /// A keyring; key ids must be distinct.
    pub fn new(current: MasterKey, old: Vec<MasterKey>) -> Result<Self, SecretBoxError> {
        let mut seen = std::collections::HashSet::new();
        for id in std::iter::once(&current).chain(&old).map(MasterKey::id) {
            if !seen.insert(id) {
                return Err(SecretBoxError::DuplicateKeyId(id.to_owned()));
            }
        }
        Ok(Self { current, old })
    }

    /// The key new blobs are sealed with.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// The retired keys, kept to open older blobs.
    pub fn old(&self) -> &[MasterKey] {
        &self.old
    }

    fn find(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.id == id)
    }
}

/// Where a sealed value lives. Pass the same three values to [`seal`] and [`open`]; use
/// one textual form of the row id throughout (for example the UUID in lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aad<'a> {
    /// Table name, e.g. `users`.
    pub table: &'a str,
    /// Primary key of the row, as text.
    pub row_id: &'a str,
    /// Column name, e.g. `totp_secret`.
    pub column: &'a str,
}

impl Aad<'_> {
    /// The associated data for a blob whose header (version and key id) is `header`.
    /// Every field is length-prefixed, so no two different triples serialise alike.
    fn to_bytes(self, header: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            header.len()
                + AAD_DOMAIN.len()
                + 12
                + self.table.len()
                + self.row_id.len()
                + self.column.len(),
        );
        out.extend_from_slice(header);
        out.extend_from_slice(AAD_DOMAIN);
        for field in [self.table, self.row_id, self.column] {
            // Field lengths are bounded by memory; a u64 prefix cannot truncate.
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }
}

fn header(key_id: &str) -> Result<Vec<u8>, SecretBoxError> {
    let len = u8::try_from(key_id.len()).map_err(|_| SecretBoxError::InvalidKeyId)?;
    let mut h = Vec::with_capacity(2 + key_id.len());
    h.push(FORMAT_VERSION);
    h.push(len);
    h.extend_from_slice(key_id.as_bytes());
    Ok(h)
}

/// The parts of a blob.
struct BlobParts<'a> {
    /// Version byte, key id length and key id: authenticated as associated data.
    header: &'a [u8],
    key_id: &'a str,
    nonce: [u8; NONCE_BYTES],
    /// Ciphertext followed by the tag.
    sealed: &'a [u8],
}

fn split(blob: &[u8]) -> Result<BlobParts<'_>, SecretBoxError> {
    let (&version, rest) = blob.split_first().ok_or(SecretBoxError::Malformed)?;
    if version != FORMAT_VERSION {
        return Err(SecretBoxError::Malformed);
    }
    let (&id_len, rest) = rest.split_first().ok_or(SecretBoxError::Malformed)?;
    let id_len = usize::from(id_len);
    if id_len == 0 || rest.len() < id_len + NONCE_BYTES + TAG_BYTES {
        return Err(SecretBoxError::Malformed);
    }
    let (key_id, rest) = rest.split_at(id_len);
    let key_id = std::str::from_utf8(key_id).map_err(|_| SecretBoxError::Malformed)?;
    let (nonce, sealed) = rest.split_at(NONCE_BYTES);
    Ok(BlobParts {
        header: &blob[..2 + id_len],
        key_id,
        nonce: nonce.try_into().map_err(|_| SecretBoxError::Malformed)?,
        sealed,
    })
}

/// Encrypts `plaintext` under the keyring's current key, bound to `aad`.
pub fn seal(keyring: &Keyring, plaintext: &[u8], aad: &Aad<'_>) -> Result<Vec<u8>, SecretBoxError> {
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(SecretBoxError::TooLarge);
    }
    let key = keyring.current();
    let mut blob = header(&key.id)?;
    let aad_bytes = aad.to_bytes(&blob);
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = key
        .cipher()?
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad: &aad_bytes,
            },
        )
        .map_err(|_| SecretBoxError::Encrypt)?;
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

/// Decrypts a blob made by [`seal`] with the key named in it, checking that it was sealed
/// for `aad`.
pub fn open(
    keyring: &Keyring,
    blob: &[u8],
    aad: &Aad<'_>,
) -> Result<Zeroizing<Vec<u8>>, SecretBoxError> {
    let parts = split(blob)?;
    let key = keyring
        .find(parts.key_id)
        .ok_or_else(|| SecretBoxError::UnknownKey(parts.key_id.to_owned()))?;
    let aad_bytes = aad.to_bytes(parts.header);
    key.cipher()?
        .decrypt(
            &parts.nonce.into(),
            Payload {
                msg: parts.sealed,
                aad: &aad_bytes,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| SecretBoxError::Decrypt)
}

/// The id of the key a blob was sealed with, if it is a well-formed blob.
pub fn key_id(blob: &[u8]) -> Option<&str> {
    split(blob).ok().map(|parts| parts.key_id)
}

/// Whether the blob should be resealed: true unless it was sealed under the current key
/// (malformed blobs included, so that a rotation pass reports them).
pub fn needs_rotation(keyring: &Keyring, blob: &[u8]) -> bool {
    key_id(blob) != Some(keyring.current().id())
}

/// Opens a blob (under any key of the keyring) and seals it again under the current key,
/// for the same `aad`.
pub fn reseal(keyring: &Keyring, blob: &[u8], aad: &Aad<'_>) -> Result<Vec<u8>, SecretBoxError> {
    let plaintext = open(keyring, blob, aad)?;
    seal(keyring, &plaintext, aad)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const TOTP: Aad<'static> = Aad {
        table: "users",
        row_id: "1",
        column: "totp_secret",
    };

    fn ring() -> Keyring {
        Keyring::new(MasterKey::generate("mk-2026-01").unwrap(), vec![]).unwrap()
    }

    #[test]
    fn seals_and_opens() {
        let kr = ring();
        let blob = seal(&kr, b"JBSWY3DPEHPK3PXP", &TOTP).unwrap();
        assert_eq!(blob[0], FORMAT_VERSION);
        assert_eq!(key_id(&blob), Some("mk-2026-01"));
        assert_eq!(blob.len(), 2 + "mk-2026-01".len() + 12 + 16 + 16);
        assert!(!blob.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"));
        assert_eq!(
            open(&kr, &blob, &TOTP).unwrap().as_slice(),
            b"JBSWY3DPEHPK3PXP"
        );
        // Empty plaintext works too.
        let empty = seal(&kr, b"", &TOTP).unwrap();
        assert!(open(&kr, &empty, &TOTP).unwrap().is_empty());
    }

    #[test]
    fn nonces_are_fresh_per_seal() {
        let kr = ring();
        let a = seal(&kr, b"same", &TOTP).unwrap();
        let b = seal(&kr, b"same", &TOTP).unwrap();
        assert_ne!(a, b);
        let nonce = |blob: &[u8]| blob[2 + 10..2 + 10 + 12].to_vec();
        assert_ne!(nonce(&a), nonce(&b));
    }

    #[test]
    fn a_blob_copied_to_another_row_or_column_fails_to_open() {
        let kr = ring();
        let blob = seal(&kr, b"alice's totp secret", &TOTP).unwrap();
        for other in [
            Aad {
                row_id: "2",
                ..TOTP
            },
            Aad {
                column: "recovery_codes",
                ..TOTP
            },
            Aad {
                table: "admins",
                ..TOTP
            },
            Aad {
                row_id: "11",
                ..TOTP
            },
            Aad { row_id: "", ..TOTP },
        ] {
            assert_eq!(
                open(&kr, &blob, &other),
                Err(SecretBoxError::Decrypt),
                "{other:?}"
            );
        }
    }

    #[test]
    fn aad_is_length_prefixed_so_boundaries_cannot_shift() {
        // Plain concatenation would make these two equal ("users1" + "totp").
        let a = Aad {
            table: "users",
            row_id: "1totp",
            column: "_secret",
        };
        let b = Aad {
            table: "users1",
            row_id: "totp",
            column: "_secret",
        };
        assert_ne!(a.to_bytes(&[]), b.to_bytes(&[]));
        let kr = ring();
        let blob = seal(&kr, b"x", &a).unwrap();
        assert_eq!(open(&kr, &blob, &b), Err(SecretBoxError::Decrypt));
    }

    #[test]
    fn tampering_is_detected() {
        let kr = ring();
        let blob = seal(&kr, b"secret", &TOTP).unwrap();
        for i in 2 + 10..blob.len() {
            let mut t = blob.clone();
            t[i] ^= 0x01;
            assert_eq!(
                open(&kr, &t, &TOTP),
                Err(SecretBoxError::Decrypt),
                "byte {i}"
            );
        }
        let truncated = &blob[..blob.len() - 1];
        assert_eq!(open(&kr, truncated, &TOTP), Err(SecretBoxError::Decrypt));
        for bad in [
            &[][..],
            &[2u8, 1, b'a'][..],
            &blob[..20],
            &[1u8, 0, 0, 0][..],
        ] {
            assert_eq!(
                open(&kr, bad, &TOTP),
                Err(SecretBoxError::Malformed),
                "{bad:?}"
            );
        }
        let mut v2 = blob.clone();
        v2[0] = 2;
        assert_eq!(open(&kr, &v2, &TOTP), Err(SecretBoxError::Malformed));
    }

    #[test]
    fn relabelling_the_key_id_does_not_open() {
        // Two keys with the same bytes but different ids: the id is authenticated.
        let bytes = [7u8; 32];
        let a = Keyring::new(MasterKey::from_bytes("a", &bytes).unwrap(), vec![]).unwrap();
        let b = Keyring::new(MasterKey::from_bytes("b", &bytes).unwrap(), vec![]).unwrap();
        let mut blob = seal(&a, b"secret", &TOTP).unwrap();
        blob[2] = b'b';
        assert_eq!(open(&b, &blob, &TOTP), Err(SecretBoxError::Decrypt));
    }

    #[test]
    fn rotation_finds_old_keys_and_reseals_under_the_current_one() {
        let old = MasterKey::generate("mk-1").unwrap();
        let old_bytes = *old.key;
        let before = Keyring::new(old, vec![]).unwrap();
        let blob = seal(&before, b"secret", &TOTP).unwrap();
        assert!(!needs_rotation(&before, &blob));

        let after = Keyring::new(
            MasterKey::generate("mk-2").unwrap(),
            vec![MasterKey::from_bytes("mk-1", &old_bytes).unwrap()],
        )
        .unwrap();
        assert!(needs_rotation(&after, &blob));
        assert_eq!(open(&after, &blob, &TOTP).unwrap().as_slice(), b"secret");
        let resealed = reseal(&after, &blob, &TOTP).unwrap();
        assert_eq!(key_id(&resealed), Some("mk-2"));
        assert!(!needs_rotation(&after, &resealed));
        assert_eq!(
            open(&after, &resealed, &TOTP).unwrap().as_slice(),
            b"secret"
        );
        assert!(needs_rotation(&after, b"garbage"));

        // Once the old key is dropped, its blobs name a key we no longer have.
        let only_new = Keyring::new(MasterKey::generate("mk-3").unwrap(), vec![]).unwrap();
        assert_eq!(
            open(&only_new, &blob, &TOTP),
            Err(SecretBoxError::UnknownKey("mk-1".into()))
        );
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_are_refused() {
        let key = MasterKey::generate("mk-2026-01").unwrap();
        let text = key.to_file_contents();
        let text = text.expose_secret();
        assert!(text.starts_with("mk-2026-01:"));
        assert!(text.ends_with('\n'));
        let again = MasterKey::from_file_contents(text).unwrap();
        assert_eq!(again.id(), "mk-2026-01");
        let kr = Keyring::new(key, vec![]).unwrap();
        let blob = seal(&kr, b"secret", &TOTP).unwrap();
        let kr2 = Keyring::new(again, vec![]).unwrap();
        assert_eq!(open(&kr2, &blob, &TOTP).unwrap().as_slice(), b"secret");

        for bad in [
            "",
            "no-colon",
            "id:not base64!",
            "id:AAAA",
            ":AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "bad id:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            assert!(MasterKey::from_file_contents(bad).is_err(), "{bad}");
        }
        assert!(
            MasterKey::from_file_contents("  mk:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n")
                .is_ok()
        );
    }

    #[test]
    fn keys_and_keyrings_are_validated_and_never_printed() {
        assert_eq!(
            MasterKey::generate("").unwrap_err(),
            SecretBoxError::InvalidKeyId
        );
        assert_eq!(
            MasterKey::generate("a:b").unwrap_err(),
            SecretBoxError::InvalidKeyId
        );
        assert_eq!(
            MasterKey::generate("x".repeat(65)).unwrap_err(),
            SecretBoxError::InvalidKeyId
        );
        assert_eq!(
            MasterKey::from_bytes("k", &[0; 31]).unwrap_err(),
            SecretBoxError::InvalidKey
        );
        let dup = Keyring::new(
            MasterKey::generate("k").unwrap(),
            vec![MasterKey::generate("k").unwrap()],
        );
        assert_eq!(dup.unwrap_err(), SecretBoxError::DuplicateKeyId("k".into()));

        let key = MasterKey::from_bytes("k", &[0xAB; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("\"k\""));
        assert!(!shown.to_lowercase().contains("abab"));
        assert!(!shown.contains("171"));
    }

    #[test]
    fn oversized_plaintext_is_refused() {
        let kr = ring();
        let big = vec![0u8; MAX_PLAINTEXT_BYTES + 1];
        assert_eq!(seal(&kr, &big, &TOTP), Err(SecretBoxError::TooLarge));
    }
}
