//! Unit tests of the key sets, token parsing and claim checks.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use super::*;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use serde_json::json;

const ISS: &str = "https://as.example";
const AUD: &str = "https://mcp.example/mcp";
const NOW: u64 = 1_800_000_000;
const ALL: &[Alg] = &[Alg::Rs256, Alg::Es256];

fn enc(v: &Value) -> String {
    BASE64URL_NOPAD.encode(v.to_string().as_bytes())
}

fn rsa(which: &str) -> RsaKeyPair {
    let der: &[u8] = match which {
        "a" => include_bytes!("../../../tests/fixtures/oauth/rsa2048-a.pk8"),
        _ => include_bytes!("../../../tests/fixtures/oauth/rsa2048-b.pk8"),
    };
    RsaKeyPair::from_pkcs8(der).unwrap()
}

fn rsa_jwk(k: &RsaKeyPair, kid: &str) -> Value {
    let c: RsaPublicKeyComponents<Vec<u8>> = k.public().into();
    json!({"kty": "RSA", "kid": kid, "use": "sig", "n": BASE64URL_NOPAD.encode(&c.n), "e": BASE64URL_NOPAD.encode(&c.e)})
}

fn ec() -> (EcdsaKeyPair, Value) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let k = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let p = k.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "ec1", "x": BASE64URL_NOPAD.encode(&p[1..33]), "y": BASE64URL_NOPAD.encode(&p[33..])});
    (k, jwk)
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "alice", "exp": NOW + 300, "iat": NOW - 10, "scope": "comfyui:read comfyui:generate"})
}

fn sign_rsa(k: &RsaKeyPair, header: &Value, claims: &Value) -> String {
    let signed = format!("{}.{}", enc(header), enc(claims));
    let mut sig = vec![0; k.public().modulus_len()];
    k.sign(
        &signature::RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signed.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{signed}.{}", BASE64URL_NOPAD.encode(&sig))
}

fn sign_ec(k: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
    let signed = format!("{}.{}", enc(header), enc(claims));
    let sig = k.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
    format!("{signed}.{}", BASE64URL_NOPAD.encode(sig.as_ref()))
}

fn set(keys: &[Value]) -> KeySet {
    KeySet::parse(json!({"keys": keys}).to_string().as_bytes()).unwrap()
}

fn expect() -> Expect<'static> {
    Expect {
        issuer: ISS,
        audience: AUD,
        leeway: 30,
        now: NOW,
    }
}

fn check(token: &str, keys: &KeySet) -> Result<Verified, JwtError> {
    parse(token, ALL)?.verify(keys, &expect())
}

#[test]
fn alg_none_is_refused_however_spelt() {
    let keys = set(&[rsa_jwk(&rsa("a"), "a")]);
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let token = format!("{}.{}.", enc(&json!({"alg": alg, "kid": "a"})), enc(&claims()));
        assert_eq!(check(&token, &keys), Err(JwtError::Algorithm), "{alg}");
    }
    // No algorithm at all.
    let token = format!("{}.{}.", enc(&json!({"kid": "a"})), enc(&claims()));
    assert_eq!(check(&token, &keys), Err(JwtError::Algorithm));
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    // The classic confusion: an HMAC whose secret is the RSA public key.
    let k = rsa("a");
    let jwk = rsa_jwk(&k, "a");
    let keys = set(std::slice::from_ref(&jwk));
    let signed = format!("{}.{}", enc(&json!({"alg": "HS256", "kid": "a"})), enc(&claims()));
    let secret = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, jwk.to_string().as_bytes());
    let tag = ring::hmac::sign(&secret, signed.as_bytes());
    let token = format!("{signed}.{}", BASE64URL_NOPAD.encode(tag.as_ref()));
    assert_eq!(check(&token, &keys), Err(JwtError::Algorithm));
    assert_eq!(Alg::parse("HS256"), None, "no HMAC algorithm exists here");
}

#[test]
fn a_valid_rs256_token_passes_with_its_subject_and_scopes() {
    let k = rsa("a");
    let keys = set(&[rsa_jwk(&k, "a")]);
    let token = sign_rsa(&k, &json!({"alg": "RS256", "kid": "a", "typ": "at+jwt"}), &claims());
    let v = check(&token, &keys).unwrap();
    assert_eq!(v.subject, "alice");
    assert_eq!(v.issuer, ISS);
    assert!(v.scopes.contains("comfyui:read") && v.scopes.contains("comfyui:generate"));
    // The algorithm must be one the configuration allows.
    assert_eq!(parse(&token, &[Alg::Es256]).err(), Some(JwtError::Algorithm));
}

#[test]
fn a_valid_es256_token_passes_and_a_tampered_one_does_not() {
    let (k, jwk) = ec();
    let keys = set(&[jwk]);
    let token = sign_ec(&k, &json!({"alg": "ES256", "kid": "ec1"}), &claims());
    assert_eq!(check(&token, &keys).unwrap().subject, "alice");
    // Another payload under the same signature.
    let mut forged = claims();
    forged["sub"] = json!("admin");
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], enc(&forged), parts[2]);
    assert_eq!(check(&tampered, &keys), Err(JwtError::Signature));
    // ES256 with an RSA key named by kid: the key does not fit.
    let rsa_keys = set(&[json!({"kty": "RSA", "kid": "ec1", "n": rsa_jwk(&rsa("a"), "x")["n"], "e": "AQAB"})]);
    assert_eq!(check(&token, &rsa_keys), Err(JwtError::UnknownKey));
}

#[test]
fn a_token_signed_by_another_key_is_refused() {
    let keys = set(&[rsa_jwk(&rsa("a"), "a")]);
    let token = sign_rsa(&rsa("b"), &json!({"alg": "RS256", "kid": "a"}), &claims());
    assert_eq!(check(&token, &keys), Err(JwtError::Signature));
    let token = sign_rsa(&rsa("b"), &json!({"alg": "RS256", "kid": "b"}), &claims());
    assert_eq!(check(&token, &keys), Err(JwtError::UnknownKey));
}

#[test]
fn wrong_audience_issuer_expiry_and_subject_are_refused() {
    let k = rsa("a");
    let keys = set(&[rsa_jwk(&k, "a")]);
    let h = json!({"alg": "RS256", "kid": "a"});
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        check(&sign_rsa(&k, &h, &c), &keys)
    };
    assert_eq!(
        with(&|c| c["aud"] = json!("https://other.example/mcp")),
        Err(JwtError::Audience)
    );
    assert_eq!(
        with(&|c| c["aud"] = json!(["https://other.example/mcp"])),
        Err(JwtError::Audience)
    );
    assert!(with(&|c| c["aud"] = json!(["https://other.example/mcp", AUD])).is_ok());
    assert_eq!(
        with(&|c| drop(c.as_object_mut().unwrap().remove("aud"))),
        Err(JwtError::Audience)
    );
    assert_eq!(
        with(&|c| c["aud"] = json!("https://mcp.example/")),
        Err(JwtError::Audience)
    );
    assert_eq!(
        with(&|c| c["iss"] = json!("https://evil.example")),
        Err(JwtError::Issuer)
    );
    assert_eq!(
        with(&|c| c["iss"] = json!("https://as.example/")),
        Err(JwtError::Issuer)
    );
    assert_eq!(with(&|c| c["exp"] = json!(NOW - 31)), Err(JwtError::Expired));
    assert!(with(&|c| c["exp"] = json!(NOW - 29)).is_ok(), "within the leeway");
    assert_eq!(
        with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
        Err(JwtError::Expired)
    );
    assert_eq!(with(&|c| c["exp"] = json!("soon")), Err(JwtError::Expired));
    assert_eq!(with(&|c| c["nbf"] = json!(NOW + 60)), Err(JwtError::NotYetValid));
    assert!(with(&|c| c["nbf"] = json!(NOW + 20)).is_ok(), "within the leeway");
    assert_eq!(with(&|c| c["iat"] = json!(NOW + 3600)), Err(JwtError::NotYetValid));
    assert_eq!(with(&|c| c["sub"] = json!("")), Err(JwtError::Subject));
    assert_eq!(with(&|c| c["sub"] = json!(7)), Err(JwtError::Subject));
    assert_eq!(with(&|c| c["sub"] = json!("a\nb")), Err(JwtError::Subject));
    assert_eq!(with(&|c| c["sub"] = json!("x".repeat(256))), Err(JwtError::Subject));
    assert_eq!(
        with(&|c| {
            c["scp"] = json!(["comfyui:models"]);
            c.as_object_mut().unwrap().remove("scope");
        })
        .unwrap()
        .scopes,
        BTreeSet::from(["comfyui:models".to_owned()])
    );
}

#[test]
fn headers_that_change_the_rules_are_refused() {
    let k = rsa("a");
    let keys = set(&[rsa_jwk(&k, "a")]);
    let token = sign_rsa(&k, &json!({"alg": "RS256", "kid": "a", "crit": ["exp"]}), &claims());
    assert_eq!(check(&token, &keys), Err(JwtError::Header));
    // An ID token or a logout token is not an access token.
    let token = sign_rsa(&k, &json!({"alg": "RS256", "kid": "a", "typ": "logout+jwt"}), &claims());
    assert_eq!(check(&token, &keys), Err(JwtError::Header));
    // A key embedded in the header is never used: the signature is
    // checked with the issuer's key and fails.
    let other = rsa("b");
    let token = sign_rsa(
        &other,
        &json!({"alg": "RS256", "kid": "a", "jwk": rsa_jwk(&other, "a")}),
        &claims(),
    );
    assert_eq!(check(&token, &keys), Err(JwtError::Signature));
}

#[test]
fn oversized_and_malformed_tokens_are_refused_before_any_crypto() {
    let keys = set(&[rsa_jwk(&rsa("a"), "a")]);
    let huge = format!("{}.{}.x", enc(&json!({"alg": "RS256"})), "A".repeat(MAX_TOKEN_BYTES));
    assert_eq!(check(&huge, &keys), Err(JwtError::TooLong));
    for bad in ["", "a", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30", "e30=.e30.e30"] {
        assert!(check(bad, &keys).is_err(), "{bad}");
    }
    // A JSON payload that is not an object.
    let token = format!("{}.{}.", enc(&json!({"alg": "RS256"})), enc(&json!([1])));
    assert_eq!(check(&token, &keys), Err(JwtError::Malformed));
}

#[test]
fn without_kid_only_a_single_fitting_key_is_used() {
    let (a, b) = (rsa("a"), rsa("b"));
    let one = set(&[rsa_jwk(&a, "a")]);
    let token = sign_rsa(&a, &json!({"alg": "RS256"}), &claims());
    assert!(check(&token, &one).is_ok());
    let two = set(&[rsa_jwk(&a, "a"), rsa_jwk(&b, "b")]);
    assert_eq!(check(&token, &two), Err(JwtError::UnknownKey));
}

#[test]
fn key_sets_keep_only_usable_signature_keys() {
    let k = rsa("a");
    let mut enc_key = rsa_jwk(&k, "enc");
    enc_key["use"] = json!("enc");
    let mut hs = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
    hs["alg"] = json!("HS256");
    let mut rs_pinned_ps = rsa_jwk(&k, "p");
    rs_pinned_ps["alg"] = json!("PS256");
    let s = set(&[
        enc_key,
        hs,
        rs_pinned_ps,
        json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
        json!("junk"),
    ]);
    assert_eq!(s.keys.len(), 1);
    assert!(s.has_kid("p"));
    // A key pinned to PS256 does not verify RS256.
    let token = sign_rsa(&k, &json!({"alg": "RS256", "kid": "p"}), &claims());
    assert_eq!(check(&token, &s), Err(JwtError::UnknownKey));
    assert_eq!(
        KeySet::parse(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#),
        Err(KeySetError::NoKeys)
    );
    assert!(matches!(KeySet::parse(b"[]"), Err(KeySetError::Shape(_))));
    let many: Vec<Value> = (0..100).map(|i| rsa_jwk(&k, &format!("k{i}"))).collect();
    assert_eq!(set(&many).keys.len(), MAX_KEYS);
}
