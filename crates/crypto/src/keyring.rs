//! The master keyring for credential encryption (I4, I5): versioned AES-256 keys read from
//! `OTESSE_MASTER_KEYS` (or, in development, a key file), AES-256-GCM with a fresh random 96-bit
//! nonce per ciphertext, and each ciphertext bound to its record through associated data.
//!
//! Stored layout: `nonce (12 bytes) || sealed plaintext || tag (16 bytes)`, with the key version
//! beside it in [`Ciphertext::key_version`]. The newest version encrypts, every version decrypts,
//! so a new key can be added first and old ciphertexts rewrapped afterwards, without downtime.
//! Random nonces stay safe for about 2^32 encryptions per key, far more than credentials ever
//! see; adding a version starts the count again.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use otesse_domain::sealed::{Ciphertext, CredentialCipher, DecryptError, SecretOwner};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::zeroize::{Zeroize, Zeroizing};
use secrecy::{ExposeSecret, SecretBox, SecretString};

/// The development key file's name inside the directory given to [`load_or_create_dev_key`].
pub const DEV_KEY_FILE: &str = "master.key";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Anything bigger is not a key file; reading stops there.
const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

type MasterKey = SecretBox<[u8; KEY_LEN]>;

/// Versioned AES-256 master keys. Never empty; keys never print (`Debug` shows versions only).
pub struct Keyring {
    keys: BTreeMap<u32, MasterKey>,
    /// The highest version: the one that encrypts.
    current: u32,
    rng: SystemRandom,
}

/// Why a keyring could not be read. No variant carries or prints key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("no master key given: expected comma-separated v<version>:<base64 of 32 bytes> entries")]
    Empty,
    /// `entry` counts from 1.
    #[error("entry {entry}: {problem}")]
    Entry { entry: usize, problem: EntryProblem },
    #[error("{}: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: Box<KeyringError> },
    #[error(
        "{} can be read or written by group or others (mode {mode:04o}); refusing to use it: run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    InsecureKeyFile { path: PathBuf, mode: u32 },
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What is wrong with one `v<version>:<base64>` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("is empty")]
    Blank,
    #[error("must look like v<version>:<base64 key>")]
    Shape,
    #[error("version must be a positive whole number without leading zeros (v1, v2, ...)")]
    BadVersion,
    #[error("version v{0} appears more than once")]
    DuplicateVersion(u32),
    #[error("key must be 32 bytes of base64")]
    BadKey,
}

impl Keyring {
    /// Parses `OTESSE_MASTER_KEYS`: comma-separated `v<version>:<standard base64 of 32 bytes>`
    /// entries, whitespace around entries ignored, versions positive and unique.
    pub fn parse(raw: &str) -> Result<Self, KeyringError> {
        if raw.trim().is_empty() {
            return Err(KeyringError::Empty);
        }
        let mut keys = BTreeMap::new();
        for (index, entry) in raw.split(',').enumerate() {
            let fail = |problem| KeyringError::Entry { entry: index + 1, problem };
            let (version, key) = parse_entry(entry.trim()).map_err(fail)?;
            if keys.insert(version, key).is_some() {
                return Err(fail(EntryProblem::DuplicateVersion(version)));
            }
        }
        let current = keys.keys().next_back().copied().ok_or(KeyringError::Empty)?;
        Ok(Self { keys, current, rng: SystemRandom::new() })
    }

    /// Every configured version, oldest first (for start-up logs and rewrapping).
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    fn cipher(key: &MasterKey) -> Aes256Gcm {
        Aes256Gcm::new(key.expose_secret().into())
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl CredentialCipher for Keyring {
    fn encrypt(&self, plaintext: &SecretString, owner: &SecretOwner) -> Ciphertext {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&self.rng, &mut nonce);
        let plain = plaintext.expose_secret().as_bytes();
        // Sealed in place in the output buffer, so no other copy of the plaintext is made.
        let mut bytes = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(plain);
        let sealed = Self::cipher(key).encrypt_in_place_detached(
            (&nonce).into(),
            &owner.associated_data(),
            &mut bytes[NONCE_LEN..],
        );
        match sealed {
            Ok(tag) => bytes.extend_from_slice(&tag),
            Err(_) => {
                bytes.zeroize();
                // AES-GCM only refuses plaintexts over 64 GiB; credential fields are far shorter.
                panic!("AES-256-GCM refused a {}-byte plaintext", plain.len());
            }
        }
        Ciphertext { key_version: self.current, bytes }
    }

    fn decrypt(&self, ciphertext: &Ciphertext, owner: &SecretOwner) -> Result<SecretString, DecryptError> {
        let version = ciphertext.key_version;
        let key = self.keys.get(&version).ok_or(DecryptError::UnknownKeyVersion(version))?;
        let (nonce, rest) = ciphertext.bytes.split_first_chunk::<NONCE_LEN>().ok_or(DecryptError::Tampered)?;
        let (sealed, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or(DecryptError::Tampered)?;
        let mut buffer = Zeroizing::new(sealed.to_vec());
        Self::cipher(key)
            .decrypt_in_place_detached(nonce.into(), &owner.associated_data(), &mut buffer[..], tag.into())
            .map_err(|_| DecryptError::Tampered)?;
        // Authenticated bytes that are not UTF-8 were not made by `encrypt`.
        let text = std::str::from_utf8(&buffer).map_err(|_| DecryptError::Tampered)?;
        Ok(SecretString::from(text))
    }

    fn current_version(&self) -> u32 {
        self.current
    }
}

fn parse_entry(entry: &str) -> Result<(u32, MasterKey), EntryProblem> {
    if entry.is_empty() {
        return Err(EntryProblem::Blank);
    }
    let (version, key) = entry.strip_prefix('v').and_then(|rest| rest.split_once(':')).ok_or(EntryProblem::Shape)?;
    Ok((parse_version(version)?, decode_key(key)?))
}

fn parse_version(text: &str) -> Result<u32, EntryProblem> {
    // `u32::from_str` would also take "+1"; one spelling per version keeps duplicates visible.
    if text.is_empty() || text.starts_with('0') || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EntryProblem::BadVersion);
    }
    text.parse().map_err(|_| EntryProblem::BadVersion)
}

fn decode_key(text: &str) -> Result<MasterKey, EntryProblem> {
    // base64 wants room for its conservative estimate (33 bytes for 44 characters); anything
    // that decodes to more than 48 bytes is too long anyway.
    let mut buffer = Zeroizing::new([0u8; 48]);
    match STANDARD.decode_slice(text, &mut buffer[..]) {
        Ok(KEY_LEN) => Ok(MasterKey::init_with_mut(|key| key.copy_from_slice(&buffer[..KEY_LEN]))),
        _ => Err(EntryProblem::BadKey),
    }
}

fn fill_random(rng: &SystemRandom, buffer: &mut [u8]) {
    // The OS generator failing leaves nothing safe to do: refuse to make a key or a nonce.
    #[allow(clippy::expect_used)]
    rng.fill(buffer).expect("the operating system's random generator failed");
}

fn random_key(rng: &SystemRandom) -> MasterKey {
    MasterKey::init_with_mut(|key| fill_random(rng, key))
}

fn entry_text(version: u32, key: &MasterKey) -> Zeroizing<String> {
    // Sized up front so that appending never reallocates and leaves a copy behind.
    let mut text = Zeroizing::new(String::with_capacity(16 + 4 * KEY_LEN.div_ceil(3)));
    text.push_str(&format!("v{version}:"));
    STANDARD.encode_string(key.expose_secret(), &mut text);
    text
}

/// A fresh `v<version>:<base64 of 32 random bytes>` entry to append to `OTESSE_MASTER_KEYS`
/// when rotating keys.
///
/// # Panics
/// If `version` is 0: versions start at 1.
pub fn generate_master_key_entry(version: u32) -> String {
    assert!(version > 0, "master key versions start at 1");
    let key = random_key(&SystemRandom::new());
    String::clone(&entry_text(version, &key))
}

/// The development keyring: `<dir>/master.key` (one `v1:<base64>` line, the format of
/// `OTESSE_MASTER_KEYS`), created with a random key and mode 0600 if missing (and `dir` with
/// 0700). An existing file that group or others can read or write is refused. Returns whether
/// the file was created.
pub fn load_or_create_dev_key(dir: &Path) -> Result<(Keyring, bool), KeyringError> {
    let path = dir.join(DEV_KEY_FILE);
    if let Some(keyring) = read_key_file(&path)? {
        return Ok((keyring, false));
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_error("create the directory", dir))?;
    if let Some(keyring) = create_key_file(&path)? {
        return Ok((keyring, true));
    }
    // Another process created the file between our read and our create: use theirs.
    match read_key_file(&path)? {
        Some(keyring) => Ok((keyring, false)),
        None => Err(io_error("read", &path)(io::ErrorKind::NotFound.into())),
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeyringError {
    let path = path.to_path_buf();
    move |source| KeyringError::Io { action, path, source }
}

/// `None` if the file does not exist.
fn read_key_file(path: &Path) -> Result<Option<Keyring>, KeyringError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error("open", path)(error)),
    };
    // Checked on the open file, so the file read is the file checked.
    let metadata = file.metadata().map_err(io_error("inspect", path))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyringError::InsecureKeyFile { path: path.to_path_buf(), mode });
    }
    let capacity = usize::try_from(metadata.len().min(MAX_KEY_FILE_LEN)).unwrap_or(0) + 1;
    let mut text = Zeroizing::new(String::with_capacity(capacity));
    file.take(MAX_KEY_FILE_LEN).read_to_string(&mut text).map_err(io_error("read", path))?;
    Keyring::parse(&text)
        .map(Some)
        .map_err(|reason| KeyringError::KeyFile { path: path.to_path_buf(), reason: Box::new(reason) })
}

/// `None` if the file already exists.
fn create_key_file(path: &Path) -> Result<Option<Keyring>, KeyringError> {
    // The mode is set by the call that creates the file: it is never readable by others, not
    // even for a moment.
    let mut file = match OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
        Err(error) => return Err(io_error("create", path)(error)),
    };
    let rng = SystemRandom::new();
    let key = random_key(&rng);
    let mut line = entry_text(1, &key);
    line.push('\n');
    if let Err(error) = file.write_all(line.as_bytes()).and_then(|()| file.sync_all()) {
        drop(file);
        // A half-written key file would fail every later start; the next start makes a new one.
        let _ = std::fs::remove_file(path);
        return Err(io_error("write", path)(error));
    }
    Ok(Some(Keyring { keys: BTreeMap::from([(1, key)]), current: 1, rng }))
}

#[cfg(test)]
mod tests {
    use otesse_domain::integration::CredentialField;
    use otesse_domain::organization::OrganizationId;
    use uuid::Uuid;

    use super::*;

    /// A key of 32 copies of `byte`, and its base64.
    fn key_text(byte: u8) -> String {
        STANDARD.encode([byte; KEY_LEN])
    }

    fn entry(version: u32, byte: u8) -> String {
        format!("v{version}:{}", key_text(byte))
    }

    fn keyring(entries: &[(u32, u8)]) -> Keyring {
        let raw: Vec<String> = entries.iter().map(|&(version, byte)| entry(version, byte)).collect();
        Keyring::parse(&raw.join(",")).unwrap()
    }

    fn binding() -> SecretOwner {
        SecretOwner::ConnectionCredential {
            organization: OrganizationId(Uuid::new_v4()),
            connection: Uuid::new_v4(),
            field: CredentialField::ApiKey,
        }
    }

    fn secret(text: &str) -> SecretString {
        SecretString::from(text)
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trips_and_records_the_version() {
        let keys = keyring(&[(1, 0xAB)]);
        let binding = binding();
        for plaintext in ["sk_live_51Hx", "", "ünïcödé ключ 🔑"] {
            let ciphertext = keys.encrypt(&secret(plaintext), &binding);
            assert_eq!(ciphertext.key_version, 1);
            assert_eq!(ciphertext.bytes.len(), NONCE_LEN + plaintext.len() + TAG_LEN);
            assert_eq!(keys.decrypt(&ciphertext, &binding).unwrap().expose_secret(), plaintext);
        }
    }

    #[test]
    fn the_output_is_plain_aes_256_gcm_that_ring_opens() {
        use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        let keys = keyring(&[(3, 0x42)]);
        let binding = binding();
        let ciphertext = keys.encrypt(&secret("pk.mapbox-token"), &binding);
        let (nonce, sealed) = ciphertext.bytes.split_at(NONCE_LEN);
        let ring_key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x42; KEY_LEN]).unwrap());
        let nonce = Nonce::try_assume_unique_for_key(nonce).unwrap();
        let mut in_out = sealed.to_vec();
        let opened = ring_key.open_in_place(nonce, Aad::from(binding.associated_data()), &mut in_out).unwrap();
        assert_eq!(opened, b"pk.mapbox-token");
    }

    #[test]
    fn every_encryption_gets_a_fresh_nonce() {
        let keys = keyring(&[(1, 1)]);
        let binding = binding();
        let a = keys.encrypt(&secret("same plaintext"), &binding);
        let b = keys.encrypt(&secret("same plaintext"), &binding);
        assert_ne!(a.bytes[..NONCE_LEN], b.bytes[..NONCE_LEN]);
        assert_ne!(a.bytes, b.bytes);
    }

    #[test]
    fn a_ciphertext_copied_to_another_row_must_fail_to_decrypt() {
        let keys = keyring(&[(1, 1)]);
        let original = binding();
        let ciphertext = keys.encrypt(&secret("sk_test_123"), &original);
        let SecretOwner::ConnectionCredential { organization, connection, field } = original else { unreachable!() };
        let other_org =
            SecretOwner::ConnectionCredential { organization: OrganizationId(Uuid::new_v4()), connection, field };
        let other_connection = SecretOwner::ConnectionCredential { organization, connection: Uuid::new_v4(), field };
        let other_field =
            SecretOwner::ConnectionCredential { organization, connection, field: CredentialField::ApiSecret };
        let other_kind = SecretOwner::StripeSigningSecret { organization, endpoint: connection };
        for moved in [other_org, other_connection, other_field, other_kind] {
            assert_eq!(keys.decrypt(&ciphertext, &moved).unwrap_err(), DecryptError::Tampered, "{moved:?}");
        }
        assert!(keys.decrypt(&ciphertext, &original).is_ok());
    }

    #[test]
    fn a_flipped_byte_anywhere_is_tampering() {
        let keys = keyring(&[(1, 1)]);
        let binding = binding();
        let ciphertext = keys.encrypt(&secret("sk_test_123"), &binding);
        for index in 0..ciphertext.bytes.len() {
            for flip in [0x01, 0x80] {
                let mut altered = ciphertext.clone();
                altered.bytes[index] ^= flip;
                assert_eq!(keys.decrypt(&altered, &binding).unwrap_err(), DecryptError::Tampered, "byte {index}");
            }
        }
    }

    #[test]
    fn truncated_or_extended_input_is_tampering_never_a_panic() {
        let keys = keyring(&[(1, 1)]);
        let binding = binding();
        let ciphertext = keys.encrypt(&secret("sk_test_123"), &binding);
        for len in 0..ciphertext.bytes.len() {
            let truncated = Ciphertext { key_version: 1, bytes: ciphertext.bytes[..len].to_vec() };
            assert_eq!(keys.decrypt(&truncated, &binding).unwrap_err(), DecryptError::Tampered, "length {len}");
        }
        let mut extended = ciphertext.clone();
        extended.bytes.push(0);
        assert_eq!(keys.decrypt(&extended, &binding).unwrap_err(), DecryptError::Tampered);
    }

    #[test]
    fn authenticated_bytes_that_are_not_utf8_are_tampering() {
        let keys = keyring(&[(1, 9)]);
        let binding = binding();
        // Sealed by hand: `encrypt` only takes strings.
        let nonce = [7u8; NONCE_LEN];
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&[0xFF, 0xFE]);
        let tag = Keyring::cipher(&keys.keys[&1])
            .encrypt_in_place_detached((&nonce).into(), &binding.associated_data(), &mut bytes[NONCE_LEN..])
            .unwrap();
        bytes.extend_from_slice(&tag);
        let ciphertext = Ciphertext { key_version: 1, bytes };
        assert_eq!(keys.decrypt(&ciphertext, &binding).unwrap_err(), DecryptError::Tampered);
    }

    #[test]
    fn old_versions_decrypt_after_rotation_and_the_newest_encrypts() {
        let binding = binding();
        let before = keyring(&[(1, 1)]);
        let old = before.encrypt(&secret("old secret"), &binding);
        assert_eq!(before.current_version(), 1);

        // Entries in any order: the highest version is the current one.
        let after = keyring(&[(2, 2), (1, 1)]);
        assert_eq!(after.current_version(), 2);
        assert_eq!(after.versions().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(after.decrypt(&old, &binding).unwrap().expose_secret(), "old secret");
        let new = after.encrypt(&secret("new secret"), &binding);
        assert_eq!(new.key_version, 2);
        assert_eq!(after.decrypt(&new, &binding).unwrap().expose_secret(), "new secret");

        // A ciphertext relabelled with another version meets the wrong key.
        let relabelled = Ciphertext { key_version: 1, bytes: new.bytes.clone() };
        assert_eq!(after.decrypt(&relabelled, &binding).unwrap_err(), DecryptError::Tampered);
    }

    #[test]
    fn an_unknown_version_is_reported_as_such() {
        let binding = binding();
        let newer = keyring(&[(1, 1), (2, 2)]).encrypt(&secret("x"), &binding);
        let older = keyring(&[(1, 1)]);
        assert_eq!(older.decrypt(&newer, &binding).unwrap_err(), DecryptError::UnknownKeyVersion(2));
    }

    #[test]
    fn parses_entries_with_surrounding_whitespace() {
        let raw = format!("  {} ,\n\t{}  ", entry(7, 1), entry(12, 2));
        let keys = Keyring::parse(&raw).unwrap();
        assert_eq!(keys.versions().collect::<Vec<_>>(), [7, 12]);
        assert_eq!(keys.current_version(), 12);
    }

    #[test]
    fn parse_errors_say_what_is_wrong_without_echoing_keys() {
        let good = key_text(0x5A);
        let short = STANDARD.encode([0x5A; 31]);
        let long = STANDARD.encode([0x5A; 33]);
        let bad_base64 = format!("{}!!", &good[..good.len() - 2]);
        let cases: Vec<(String, &str, &str)> = vec![
            (String::new(), "no master key given", ""),
            ("  \n ".to_owned(), "no master key given", ""),
            (format!("1:{good}"), "entry 1: must look like v<version>:<base64 key>", &good),
            (format!("v1{good}"), "entry 1: must look like", &good),
            (format!("v1:{good},"), "entry 2: is empty", &good),
            (format!("v0:{good}"), "entry 1: version must be a positive whole number", &good),
            (format!("v01:{good}"), "entry 1: version must be", &good),
            (format!("v+1:{good}"), "entry 1: version must be", &good),
            (format!("vx:{good}"), "entry 1: version must be", &good),
            (format!("v99999999999:{good}"), "entry 1: version must be", &good),
            (format!("v1:{good},v1:{good}"), "entry 2: version v1 appears more than once", &good),
            (format!("v1:{good},v2:{bad_base64}"), "entry 2: key must be 32 bytes of base64", &bad_base64),
            (format!("v1:{short}"), "entry 1: key must be 32 bytes of base64", &short),
            (format!("v1:{long}"), "entry 1: key must be 32 bytes of base64", &long),
        ];
        for (raw, expected, key) in &cases {
            let error = Keyring::parse(raw).unwrap_err();
            let (shown, debug) = (error.to_string(), format!("{error:?}"));
            assert!(shown.contains(expected), "{raw:?} gave {shown:?}");
            if !key.is_empty() {
                assert!(!shown.contains(key) && !debug.contains(key), "{shown} / {debug} echoes the key");
                assert!(!shown.contains(&key[..8]) && !debug.contains(&key[..8]));
            }
        }
    }

    #[test]
    fn debug_shows_versions_only() {
        let keys = keyring(&[(1, 0xAB), (2, 0xCD)]);
        let debug = format!("{keys:?}");
        assert!(debug.contains("versions: [1, 2]") && debug.contains("current: 2"), "{debug}");
        for needle in [key_text(0xAB), key_text(0xCD), "171".to_owned(), "205".to_owned(), "0xab".to_owned()] {
            assert!(!debug.to_lowercase().contains(&needle.to_lowercase()), "{debug} contains {needle}");
        }
    }

    #[test]
    fn generated_entries_parse_and_differ() {
        let a = generate_master_key_entry(3);
        let b = generate_master_key_entry(3);
        assert!(a.starts_with("v3:"), "{a}");
        assert_ne!(a, b);
        let keys = Keyring::parse(&format!("{a},{}", generate_master_key_entry(4))).unwrap();
        assert_eq!(keys.current_version(), 4);
    }

    #[test]
    fn the_dev_key_file_is_created_0600_and_reused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data").join("keys");
        let binding = binding();

        let (first, created) = load_or_create_dev_key(&dir).unwrap();
        assert!(created);
        let path = dir.join(DEV_KEY_FILE);
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(mode_of(&dir), 0o700);
        assert_eq!(first.current_version(), 1);
        let contents = std::fs::read_to_string(&path).unwrap();
        assert!(contents.starts_with("v1:") && contents.ends_with('\n') && contents.lines().count() == 1);
        let ciphertext = first.encrypt(&secret("dev credential"), &binding);

        let (second, created) = load_or_create_dev_key(&dir).unwrap();
        assert!(!created);
        assert_eq!(second.decrypt(&ciphertext, &binding).unwrap().expose_secret(), "dev credential");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), contents);
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEV_KEY_FILE);
        std::fs::write(&path, format!("{}\n", entry(1, 1))).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = load_or_create_dev_key(dir.path()).unwrap_err();
            assert!(matches!(error, KeyringError::InsecureKeyFile { mode: m, .. } if m == mode), "{error:?}");
            let shown = error.to_string();
            assert!(shown.contains("chmod 600") && shown.contains(DEV_KEY_FILE), "{shown}");
            assert!(!shown.contains(&key_text(1)));
        }
        // Left as it was: the operator decides.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", entry(1, 1)));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!load_or_create_dev_key(dir.path()).unwrap().1);
    }

    #[test]
    fn a_corrupt_key_file_names_the_file_not_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEV_KEY_FILE);
        let short = STANDARD.encode([3u8; 31]);
        let contents = format!("v1:{short}\n");
        std::fs::write(&path, &contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let shown = load_or_create_dev_key(dir.path()).unwrap_err().to_string();
        assert!(shown.contains(DEV_KEY_FILE) && shown.contains("entry 1: key must be 32 bytes of base64"), "{shown}");
        assert!(!shown.contains(&short));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), contents, "a bad file is never overwritten");
    }
}
/// Ciphertexts sealed by the code of 2026-12-06 (before sealed secrets got a type of their own),
/// one per kind of owner. Databases hold such rows: whatever the types become, the associated
/// data must stay byte for byte what it was, or they stop decrypting.
#[cfg(test)]
mod sealed_by_earlier_code {
    use base64::Engine;
    use otesse_domain::api_key::ApiKeyId;
    use otesse_domain::idempotency::{CallerScope, IdempotencyKey, response_owner};
    use otesse_domain::integration::CredentialField;
    use otesse_domain::organization::OrganizationId;
    use otesse_domain::sealed::{Ciphertext, EndpointSlot, SecretOwner};
    use secrecy::ExposeSecret;
    use uuid::Uuid;

    use super::*;

    const ORGANIZATION: u128 = 0x0190_0000_0000_7000_8000_0000_0000_0001;
    const OWNER: u128 = 0x0190_0000_0000_7000_8000_0000_0000_0002;
    const RECORD: u128 = 0x0190_0000_0000_7000_8000_0000_0000_0003;

    fn keyring() -> Keyring {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        Keyring::parse(&format!("v3:{key}")).unwrap()
    }

    fn sealed(hex: &str) -> Ciphertext {
        let bytes = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        Ciphertext { key_version: 3, bytes }
    }

    fn opens(owner: &SecretOwner, hex: &str) -> String {
        keyring()
            .decrypt(&sealed(hex), owner)
            .expect("a ciphertext of the earlier code opens")
            .expose_secret()
            .to_owned()
    }

    fn organization() -> OrganizationId {
        OrganizationId(Uuid::from_u128(ORGANIZATION))
    }

    fn owned(field: CredentialField) -> SecretOwner {
        SecretOwner::ConnectionCredential { organization: organization(), connection: Uuid::from_u128(OWNER), field }
    }

    #[test]
    fn connection_credentials_still_open() {
        for (field, hex) in [
            (
                CredentialField::ApiKey,
                "bd9514cc1a0892d15d4dfaf9d7c414cb57c9ac710abfb3ff0e1b5a2ed8d8b657535655195ffda03afe0cd99d5de5c6c4",
            ),
            (
                CredentialField::ApiSecret,
                "9d5a4c2d8497ebe921829aaded10929790251024cf7df8adacdb44bd302358a74e14cf1c8cb6f7960b1e872da0ca7deacd16fe",
            ),
            (
                CredentialField::AccountId,
                "0fa04b38a168b5252613b847aae43fa47618be4f365ee2ca1b760b1bd5e0f2d37f8cc869a708501ce03b09d8f7d163218b85cc",
            ),
        ] {
            assert_eq!(opens(&owned(field), hex), format!("plaintext of {}", field.as_str()));
        }
    }

    #[test]
    fn stripe_signing_secrets_still_open() {
        let hex = "3c5a7ee585fd047fe9d811785b77d28501cdd0a823d353f78b8b25ef4ccd31c4a0a92cce5ed166a974ab6f2bd05b55b3\
                   4a7c881035efe8be57c7d5a3d381b0";
        let hex: String = hex.split_whitespace().collect();
        let owner = SecretOwner::StripeSigningSecret { organization: organization(), endpoint: Uuid::from_u128(OWNER) };
        assert_eq!(opens(&owner, &hex), "plaintext of webhook_signing_secret");
    }

    #[test]
    fn outbound_endpoint_secrets_still_open() {
        let hex = "35dd44264f069c85cd1557a93fbfb611f50ceb0ef893ee21496ede73555e296e1b0d453d974aa38e738798fe278c7555\
                   28e6ab4be9711b4dbe33a8b44ea410cc";
        let hex: String = hex.split_whitespace().collect();
        // Both slots: a rotation moved the current secret to the previous slot as it was.
        for slot in [EndpointSlot::Current, EndpointSlot::Previous] {
            let owner = SecretOwner::OutboundEndpointSecret {
                organization: organization(),
                endpoint: Uuid::from_u128(OWNER),
                slot,
            };
            assert_eq!(opens(&owner, &hex), "plaintext of outbound_webhook_secret");
        }
    }

    #[test]
    fn idempotent_responses_still_open() {
        let scope = CallerScope::api_key(ApiKeyId(Uuid::from_u128(OWNER)));
        let key = IdempotencyKey::parse("retry-7").unwrap();
        let binding = response_owner(
            OrganizationId(Uuid::from_u128(ORGANIZATION)),
            &scope,
            &key,
            Uuid::from_u128(RECORD),
            crate::sha256,
        );
        let hex = "d9de625ac8904a4e2ba2badd620b156460acde5666dc0835d71b1ca9cfba32280407bc9f";
        assert_eq!(opens(&binding, hex), "{\"id\":1}");
    }

    /// Sealed by the code of 2026-12-06 that introduced OAuth connections' tokens.
    #[test]
    fn oauth_tokens_still_open() {
        use otesse_domain::integration::TokenKind;
        for (token, hex) in [
            (
                TokenKind::Access,
                "7e2f7f847941b1e844cef65c1d54bceeded01627d2e5538416fe87356027dd62f75b9f30a3ff34e11736e06fb0cf22454f8b11d82cc73d1153431d",
            ),
            (
                TokenKind::Refresh,
                "0d115b9fb9d49a13e0602bb03e2e228aa2515966249caa570aed23829feecd5e578840f2690533d3c6d89e21de40af1198fed20376363df41a72ab67",
            ),
        ] {
            let owner =
                SecretOwner::OAuthToken { organization: organization(), connection: Uuid::from_u128(OWNER), token };
            assert_eq!(opens(&owner, hex), format!("plaintext of {}", token.as_str()));
        }
    }
}
