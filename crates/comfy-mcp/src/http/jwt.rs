//! Verifying a JWT access token (RFC 7519, RFC 9068) against a key set
//! (RFC 7517), with `ring` doing the signature arithmetic.
//!
//! Hand-written rather than a JWT crate: the checks an access token for
//! this server needs are few, every one of them is ours to pin (the
//! algorithm comes from our list and must fit the key's type, never from
//! the token alone), and `ring` is already in the tree through rustls,
//! where the JWT crates bring a second crypto stack (`jsonwebtoken`'s
//! backends are aws-lc-rs, banned here, or RustCrypto's `rsa`, which
//! carries an unfixed timing advisory).
//!
//! What is checked, in order, cheapest first: the token's size
//! ([`MAX_TOKEN_BYTES`]) and shape (three base64url parts, no padding);
//! the header (`alg` one of the configured algorithms, no `crit`, a `typ`
//! of `JWT` or `at+jwt` if any); the signature, with the key named by
//! `kid` (or the only key that fits when there is no `kid`), whose type,
//! curve, `use` and `alg` must fit the header's algorithm; then the
//! claims: `iss` exactly the issuer whose keys verified it, `aud` (a
//! string or a list) holding this resource, `exp` required and `nbf`/`iat`
//! honoured with a small leeway, and a non-empty `sub`.

use data_encoding::BASE64URL_NOPAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// Longest token accepted, bytes (access tokens are well under 2 KiB).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Most keys kept from one key set.
pub const MAX_KEYS: usize = 32;
/// Longest `sub` accepted, bytes.
pub const MAX_SUBJECT_BYTES: usize = 255;

/// A signature algorithm this server can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048 to 8192 bit keys.
    Rs256,
    /// RSASSA-PSS with SHA-256, 2048 to 8192 bit keys.
    Ps256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    /// The algorithm called `name` in a JWT header or in the
    /// configuration (`RS256`, `PS256`, `ES256`, `ES384`, `EdDSA`): exact
    /// spelling, nothing else (`none`, `HS256`, ... are not algorithms
    /// here).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "PS256" => Self::Ps256,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "EdDSA" => Self::EdDsa,
            _ => return None,
        })
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// One verification key from a key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// The algorithm the key set pins it to (`alg`), if any.
    pub alg: Option<Alg>,
    material: Material,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point, `04 || x || y`.
    P256(Vec<u8>),
    P384(Vec<u8>),
    Ed25519(Vec<u8>),
}

impl Key {
    fn fits(&self, alg: Alg) -> bool {
        let kind = matches!(
            (&self.material, alg),
            (Material::Rsa { .. }, Alg::Rs256 | Alg::Ps256)
                | (Material::P256(_), Alg::Es256)
                | (Material::P384(_), Alg::Es384)
                | (Material::Ed25519(_), Alg::EdDsa)
        );
        kind && self.alg.is_none_or(|a| a == alg)
    }

    fn verify(&self, alg: Alg, message: &[u8], sig: &[u8]) -> bool {
        match (&self.material, alg) {
            (Material::Rsa { n, e }, Alg::Rs256) => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            (Material::Rsa { n, e }, Alg::Ps256) => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PSS_2048_8192_SHA256, message, sig)
                .is_ok(),
            (Material::P256(point), Alg::Es256) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, sig)
                .is_ok(),
            (Material::P384(point), Alg::Es384) => UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(message, sig)
                .is_ok(),
            (Material::Ed25519(x), Alg::EdDsa) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, sig)
                .is_ok(),
            _ => false,
        }
    }
}

/// The verification keys of one issuer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    /// The keys, at most [`MAX_KEYS`].
    pub keys: Vec<Key>,
}

/// A JWK as a key set carries it (only the members we read).
#[derive(Deserialize)]
struct Jwk {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Why a key set was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetError {
    /// Not a JSON object with a `keys` list.
    #[error("not a JWK set: {0}")]
    Shape(String),
    /// No key in it that can verify signatures.
    #[error("no signature key this server can use in the key set")]
    NoKeys,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    BASE64URL_NOPAD.decode(s.as_bytes()).ok()
}

impl KeySet {
    /// Reads a JWK set (`{"keys": [...]}`), keeping the signature keys
    /// this server can use: RSA (`n`, `e`), EC P-256 and P-384 (`x`, `y`)
    /// and OKP Ed25519 (`x`); keys for encryption (`use: enc`), private
    /// members, other types and malformed keys are skipped. At most
    /// [`MAX_KEYS`] are kept.
    pub fn parse(json: &[u8]) -> Result<Self, KeySetError> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Value>,
        }
        let set: Set = serde_json::from_slice(json).map_err(|e| KeySetError::Shape(e.to_string()))?;
        let mut keys = Vec::new();
        for raw in set.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
                continue;
            };
            if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            let alg = match jwk.alg.as_deref() {
                None => None,
                Some(name) => match Alg::parse(name) {
                    Some(a) => Some(a),
                    None => continue,
                },
            };
            let material = match (jwk.kty.as_deref(), jwk.crv.as_deref()) {
                (Some("RSA"), _) => {
                    let (Some(n), Some(e)) = (jwk.n.as_deref().and_then(b64), jwk.e.as_deref().and_then(b64)) else {
                        continue;
                    };
                    let strip = |v: Vec<u8>| {
                        let first = v.iter().position(|&b| b != 0).unwrap_or(v.len());
                        v[first..].to_vec()
                    };
                    Material::Rsa {
                        n: strip(n),
                        e: strip(e),
                    }
                }
                (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
                    let size = if crv == "P-256" { 32 } else { 48 };
                    let (Some(x), Some(y)) = (jwk.x.as_deref().and_then(b64), jwk.y.as_deref().and_then(b64)) else {
                        continue;
                    };
                    if x.len() != size || y.len() != size {
                        continue;
                    }
                    let mut point = Vec::with_capacity(1 + 2 * size);
                    point.push(4);
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    if size == 32 {
                        Material::P256(point)
                    } else {
                        Material::P384(point)
                    }
                }
                (Some("OKP"), Some("Ed25519")) => match jwk.x.as_deref().and_then(b64) {
                    Some(x) if x.len() == 32 => Material::Ed25519(x),
                    _ => continue,
                },
                _ => continue,
            };
            keys.push(Key {
                kid: jwk.kid.filter(|k| k.len() <= 256),
                alg,
                material,
            });
            if keys.len() == MAX_KEYS {
                break;
            }
        }
        if keys.is_empty() {
            return Err(KeySetError::NoKeys);
        }
        Ok(Self { keys })
    }

    /// The key for a token signed with `alg` and naming `kid`: the key of
    /// that id, if it fits the algorithm; without a `kid`, the only key
    /// that fits (several are ambiguous: none is chosen).
    fn find(&self, kid: Option<&str>, alg: Alg) -> Option<&Key> {
        if let Some(kid) = kid {
            return self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .filter(|k| k.fits(alg));
        }
        let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
        let first = fitting.next();
        if fitting.next().is_some() { None } else { first }
    }

    /// Whether a key named `kid` is in the set.
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// Why a token was refused. The message is safe to send back in
/// `error_description` (it never quotes the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("the token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
    /// Not three base64url parts of JSON.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// `alg` is not one of the configured algorithms (`none`, `HS256`, ...).
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// A header this server does not understand (`crit`) or a `typ` that
    /// is not an access token's.
    #[error("the token's header is not accepted")]
    Header,
    /// `iss` is missing or not a configured issuer.
    #[error("the token's issuer is not accepted")]
    Issuer,
    /// No key of the issuer fits `kid` and `alg`.
    #[error("no key of the issuer matches the token")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// `aud` does not name this resource.
    #[error("the token is not meant for this resource (aud)")]
    Audience,
    /// No `exp`, or it has passed.
    #[error("the token has expired or has no expiry")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// No usable `sub`.
    #[error("the token has no usable subject (sub)")]
    Subject,
}

/// The parts of a token read before its signature is checked: enough to
/// choose the issuer's keys. Nothing here is trusted.
#[derive(Debug, Clone)]
pub struct Unverified<'a> {
    /// The algorithm of the header (one of the allowed).
    pub alg: Alg,
    /// The header's `kid`.
    pub kid: Option<String>,
    /// The payload's `iss`.
    pub iss: String,
    signed: &'a str,
    signature: Vec<u8>,
    claims: Value,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

/// Splits and decodes `token`, checks its size, shape, header and
/// algorithm (one of `allowed`), and reads `iss`.
pub fn parse<'a>(token: &'a str, allowed: &[Alg]) -> Result<Unverified<'a>, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLong);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Header = b64(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    let alg = header
        .alg
        .as_deref()
        .and_then(Alg::parse)
        .filter(|a| allowed.contains(a))
        .ok_or(JwtError::Algorithm)?;
    if header.crit.is_some() {
        return Err(JwtError::Header);
    }
    if let Some(typ) = header.typ.as_deref() {
        let typ = typ.to_ascii_lowercase();
        let typ = typ.strip_prefix("application/").unwrap_or(&typ);
        if typ != "jwt" && typ != "at+jwt" {
            return Err(JwtError::Header);
        }
    }
    let claims: Value = b64(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or(JwtError::Malformed)?;
    let signature = b64(s).ok_or(JwtError::Malformed)?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(JwtError::Issuer)?
        .to_owned();
    Ok(Unverified {
        alg,
        kid: header.kid.filter(|k| k.len() <= 256),
        iss,
        signed: &token[..h.len() + 1 + p.len()],
        signature,
        claims,
    })
}

/// What the claims must say.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// The issuer whose keys are used (exact match of `iss`).
    pub issuer: &'a str,
    /// This resource's canonical URI (one of `aud`).
    pub audience: &'a str,
    /// Seconds of clock difference forgiven on `exp`, `nbf` and `iat`.
    pub leeway: u64,
    /// Now, in seconds since the Unix epoch.
    pub now: u64,
}

/// A verified token's claims that the server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// The granted scopes (`scope`, space separated, or a `scp` list).
    pub scopes: BTreeSet<String>,
    /// `exp`.
    pub expires: u64,
}

impl Unverified<'_> {
    /// Verifies the signature with the issuer's `keys`, then the claims.
    pub fn verify(&self, keys: &KeySet, expect: &Expect<'_>) -> Result<Verified, JwtError> {
        if self.iss != expect.issuer {
            return Err(JwtError::Issuer);
        }
        let key = keys.find(self.kid.as_deref(), self.alg).ok_or(JwtError::UnknownKey)?;
        if !key.verify(self.alg, self.signed.as_bytes(), &self.signature) {
            return Err(JwtError::Signature);
        }
        let c = &self.claims;
        let audience_ok = match c.get("aud") {
            Some(Value::String(a)) => a == expect.audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.audience)),
            _ => false,
        };
        if !audience_ok {
            return Err(JwtError::Audience);
        }
        // Numeric dates may be fractional (RFC 7519 NumericDate).
        let date = |name: &str| {
            c.get(name)
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let expires = date("exp").ok_or(JwtError::Expired)?;
        let (now, leeway) = (expect.now as f64, expect.leeway as f64);
        if now >= expires + leeway {
            return Err(JwtError::Expired);
        }
        if c.get("nbf").is_some_and(|v| !v.is_null()) {
            let nbf = date("nbf").ok_or(JwtError::Malformed)?;
            if nbf > now + leeway {
                return Err(JwtError::NotYetValid);
            }
        }
        if let Some(iat) = date("iat")
            && iat > now + leeway
        {
            return Err(JwtError::NotYetValid);
        }
        let subject = c
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_BYTES && !s.chars().any(char::is_control))
            .ok_or(JwtError::Subject)?
            .to_owned();
        let mut scopes = BTreeSet::new();
        if let Some(s) = c.get("scope").and_then(Value::as_str) {
            scopes.extend(s.split(' ').filter(|s| !s.is_empty()).take(64).map(str::to_owned));
        }
        if let Some(list) = c.get("scp").and_then(Value::as_array) {
            scopes.extend(list.iter().filter_map(Value::as_str).take(64).map(str::to_owned));
        }
        Ok(Verified {
            issuer: self.iss.clone(),
            subject,
            scopes,
            expires: expires as u64,
        })
    }
}

#[cfg(test)]
mod tests;
