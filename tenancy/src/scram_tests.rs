//! SCRAM-SHA-512 tests: a fixed vector computed with Python's hashlib, round trips with an
//! independent client written here on the `sha2` crate (own HMAC and PBKDF2), and refusals.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest, Sha512};

use super::*;

const MOCK_SECRET: &[u8] = b"deployment-wide mock secret";

// Computed with: hashlib.pbkdf2_hmac('sha512', b"pencil-\xc3\xa9", b"fjord-scram-salt", 4096, 64),
// hmac.new(..., hashlib.sha512), user "al,ice=x", client nonce "rOprNGfwEbeRWgbNEkqO",
// server nonce bytes 1..=24.
const V_PASSWORD: &[u8] = "pencil-é".as_bytes();
const V_SALT: &[u8] = b"fjord-scram-salt";
const V_STORED: &str = "3236a8a69beb3f90d21a9e3812352c493bb45e46c6c2cb6d81a979120f39cb645f043c2aa77245a4048deb0ea36d63469e1488a13ef43835136e5ded3df63a0e";
const V_SERVER: &str = "b0acbfd8c77cc30f62d7132d96fddb94c7d2d72af645d97c236d9c0b311cdcdc3a16a462a2cae0c9a6fef7ac7dbb70d264d73ca4f915a279912744b970aa927b";
const V_CLIENT_FIRST: &str = "n,,n=al=2Cice=3Dx,r=rOprNGfwEbeRWgbNEkqO";
const V_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqOAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcY,s=ZmpvcmQtc2NyYW0tc2FsdA==,i=4096";
const V_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqOAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcY,p=It9oC8L3VxKe98UH3Oaq68wrQTxUGN2JlJZlvel+YvzJ21g7HohZK6FuehjhXMsN0cWw89c7V3i0jMDBEi8FSg==";
const V_SERVER_FINAL: &str =
    "v=mfLEoQbXS88JvUHqobGDWS1KC0NcrYt9He0cW7NyTrKy8aPQ6dNlcRtFsnuhx1+b9yZI0B7iFVeA874zqaTB5A==";

fn server_nonce() -> [u8; SERVER_NONCE_LEN] {
    std::array::from_fn(|i| i as u8 + 1)
}

#[test]
fn derive_matches_python_hashlib() {
    let c = ScramCredential::derive(V_PASSWORD, V_SALT, 4096).unwrap();
    assert_eq!(hex::encode(c.stored_key), V_STORED);
    assert_eq!(hex::encode(c.server_key), V_SERVER);
    assert_eq!(c.salt, V_SALT);
    assert_eq!(c.iterations, 4096);
}

#[test]
fn fixed_vector_exchange() {
    let cred = ScramCredential::derive(V_PASSWORD, V_SALT, 4096).unwrap();
    let mut s = ScramServer::new(&server_nonce(), MOCK_SECRET);
    assert_eq!(
        s.client_first(V_CLIENT_FIRST.as_bytes()).unwrap(),
        "al,ice=x"
    );
    assert_eq!(
        s.server_first(Some(cred)).unwrap(),
        V_SERVER_FIRST.as_bytes()
    );
    let (fin, user) = s.client_final(V_CLIENT_FINAL.as_bytes()).unwrap();
    assert_eq!(fin, V_SERVER_FINAL.as_bytes());
    assert_eq!(user, "al,ice=x");
    // The exchange is over: any further message is out of order.
    assert_eq!(
        s.client_final(V_CLIENT_FINAL.as_bytes()),
        Err(ScramError::OutOfOrder)
    );
}

#[test]
fn credential_serde_round_trip_and_redacted_debug() {
    let c = ScramCredential::derive(b"pw", b"salt", 4096).unwrap();
    let json = serde_json::to_string(&c).unwrap();
    assert!(
        json.contains(&format!("\"salt\":\"{}\"", B64.encode(b"salt"))),
        "{json}"
    );
    let back: ScramCredential = serde_json::from_str(&json).unwrap();
    assert_eq!(back, c);
    let short = json.replace(&B64.encode(c.stored_key), &B64.encode([1u8; 10]));
    assert!(serde_json::from_str::<ScramCredential>(&short).is_err());
    let dbg = format!("{c:?}");
    assert!(
        dbg.contains("<redacted>") && !dbg.contains(&B64.encode(c.stored_key)),
        "{dbg}"
    );
}

#[test]
fn derive_refuses_weak_or_absurd_parameters() {
    assert_eq!(
        ScramCredential::derive(b"pw", b"s", 4095),
        Err(ScramError::BadIterations(4095))
    );
    assert_eq!(
        ScramCredential::derive(b"pw", b"s", 16385),
        Err(ScramError::BadIterations(16385))
    );
    assert!(ScramCredential::derive(b"pw", b"", 4096).is_err());
}

// ---- an independent client: HMAC and PBKDF2 written out on sha2 ----

fn hmac512(key: &[u8], msg: &[u8]) -> [u8; 64] {
    let mut k = [0u8; 128];
    if key.len() > 128 {
        k[..64].copy_from_slice(&Sha512::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha512::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha512::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn pbkdf2_512(pw: &[u8], salt: &[u8], iterations: u32) -> [u8; 64] {
    let mut u = hmac512(pw, &[salt, &1u32.to_be_bytes()].concat());
    let mut out = u;
    for _ in 1..iterations {
        u = hmac512(pw, &u);
        out.iter_mut().zip(u.iter()).for_each(|(o, x)| *o ^= x);
    }
    out
}

struct Client {
    password: Vec<u8>,
    bare: String,
    gs2: String,
    nonce: String,
    server_signature: [u8; 64],
}

impl Client {
    fn new(user_escaped: &str, password: &[u8], gs2: &str) -> (Self, Vec<u8>) {
        Self::with_nonce(user_escaped, password, gs2, "c1ientN0nce+/xyz")
    }

    fn with_nonce(user_escaped: &str, password: &[u8], gs2: &str, nonce: &str) -> (Self, Vec<u8>) {
        let nonce = nonce.to_string();
        let bare = format!("n={user_escaped},r={nonce}");
        let msg = format!("{gs2}{bare}").into_bytes();
        (
            Self {
                password: password.to_vec(),
                bare,
                gs2: gs2.into(),
                nonce,
                server_signature: [0; 64],
            },
            msg,
        )
    }

    fn finish(&mut self, server_first: &[u8]) -> Vec<u8> {
        self.finish_sending_nonce(server_first, |_, r| r.to_string())
    }

    /// Like `finish`, but sends (and signs, as the AuthMessage contains it) the `r=` that
    /// `sent_nonce(client_nonce, server_r)` returns.
    fn finish_sending_nonce(
        &mut self,
        server_first: &[u8],
        sent_nonce: impl FnOnce(&str, &str) -> String,
    ) -> Vec<u8> {
        let sf = std::str::from_utf8(server_first).unwrap();
        let mut parts = sf.split(',');
        let r = parts.next().unwrap().strip_prefix("r=").unwrap();
        let salt = B64
            .decode(parts.next().unwrap().strip_prefix("s=").unwrap())
            .unwrap();
        let i: u32 = parts
            .next()
            .unwrap()
            .strip_prefix("i=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(r.starts_with(&self.nonce));
        let salted = pbkdf2_512(&self.password, &salt, i);
        let client_key = hmac512(&salted, b"Client Key");
        let stored_key: [u8; 64] = Sha512::digest(client_key).into();
        let without_proof = format!(
            "c={},r={}",
            B64.encode(&self.gs2),
            sent_nonce(&self.nonce, r)
        );
        let auth = format!("{},{sf},{without_proof}", self.bare);
        let sig = hmac512(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(sig.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        self.server_signature = hmac512(&hmac512(&salted, b"Server Key"), auth.as_bytes());
        format!("{without_proof},p={}", B64.encode(proof)).into_bytes()
    }
}

fn run(
    user_escaped: &str,
    password: &[u8],
    gs2: &str,
    stored: Option<ScramCredential>,
) -> Result<String, ScramError> {
    let (mut client, first) = Client::new(user_escaped, password, gs2);
    let mut server = ScramServer::new(&server_nonce(), MOCK_SECRET);
    server.client_first(&first)?;
    let sf = server.server_first(stored)?;
    let cf = client.finish(&sf);
    let (fin, user) = server.client_final(&cf)?;
    assert_eq!(
        fin,
        format!("v={}", B64.encode(client.server_signature)).into_bytes()
    );
    Ok(user)
}

#[test]
fn round_trip_with_independent_client() {
    let cred =
        ScramCredential::derive(b"s3cret", b"0123456789abcdef0123456789abcdef", 4096).unwrap();
    assert_eq!(
        run("alice", b"s3cret", "n,,", Some(cred.clone())),
        Ok("alice".into())
    );
    // `y,,` (client could bind, thinks we cannot) and a matching authzid are accepted.
    assert_eq!(
        run("alice", b"s3cret", "y,,", Some(cred.clone())),
        Ok("alice".into())
    );
    assert_eq!(
        run("alice", b"s3cret", "n,a=alice,", Some(cred.clone())),
        Ok("alice".into())
    );
    assert_eq!(
        run("alice", b"wrong", "n,,", Some(cred)),
        Err(ScramError::InvalidCredentials)
    );
    let cred = ScramCredential::derive(b"pw", b"salt", 5000).unwrap();
    assert_eq!(
        run("a=3Db=2Cc", b"pw", "n,,", Some(cred)),
        Ok("a=b,c".into())
    );
}

#[test]
fn unknown_user_fails_only_at_the_end_and_looks_like_a_real_one() {
    let err = run("ghost", b"anything", "n,,", None).unwrap_err();
    assert_eq!(err, ScramError::InvalidCredentials);
    assert_eq!(err.to_string(), INVALID_CREDENTIALS_MESSAGE);
    assert_eq!(err.error_code(), 58);
    assert_eq!(ScramError::OutOfOrder.error_code(), 34);
    // The mock salt is stable per user name (and secret) and of the usual length and cost.
    let first = |user: &str, secret: &[u8]| {
        let mut s = ScramServer::new(&server_nonce(), secret);
        s.client_first(format!("n,,n={user},r=abc").as_bytes())
            .unwrap();
        String::from_utf8(s.server_first(None).unwrap()).unwrap()
    };
    let a = first("ghost", MOCK_SECRET);
    assert_eq!(a, first("ghost", MOCK_SECRET));
    assert_ne!(a, first("ghost2", MOCK_SECRET));
    assert_ne!(a, first("ghost", b"other secret"));
    let salt = a.split(",s=").nth(1).unwrap().split(',').next().unwrap();
    assert_eq!(B64.decode(salt).unwrap().len(), SALT_LEN);
    assert!(a.ends_with(&format!(",i={DEFAULT_ITERATIONS}")));
}

#[test]
fn client_first_refusals() {
    let cases: &[(&[u8], ScramError)] = &[
        (
            b"p=tls-unique,,n=a,r=x",
            ScramError::ChannelBindingUnsupported,
        ),
        (
            b"x,,n=a,r=x",
            ScramError::Malformed("bad channel binding flag"),
        ),
        (b"n", ScramError::Malformed("no GS2 header")),
        (b"n,", ScramError::Malformed("no GS2 header")),
        (
            b"n,,m=ext,n=a,r=x",
            ScramError::UnsupportedExtension("m".into()),
        ),
        (
            b"n,,n=a,r=x,tokenauth=true",
            ScramError::UnsupportedExtension("tokenauth".into()),
        ),
        (b"n,,r=x", ScramError::Malformed("expected n=<user>")),
        (b"n,,n=,r=x", ScramError::Malformed("empty user name")),
        (
            b"n,,n=a=2x,r=x",
            ScramError::Malformed("invalid escape in user name"),
        ),
        (
            b"n,,n=a=",
            ScramError::Malformed("invalid escape in user name"),
        ),
        (b"n,,n=a", ScramError::Malformed("expected r=<nonce>")),
        (b"n,,n=a,r=", ScramError::Malformed("invalid nonce")),
        (b"n,,n=a,r=a b", ScramError::Malformed("invalid nonce")),
        (b"n,a=bob,n=alice,r=x", ScramError::AuthzidMismatch),
        (b"n,bob,n=alice,r=x", ScramError::Malformed("bad authzid")),
        (b"n,,n=\xff,r=x", ScramError::Malformed("not UTF-8")),
    ];
    for (msg, want) in cases {
        let mut s = ScramServer::new(&server_nonce(), MOCK_SECRET);
        assert_eq!(
            s.client_first(msg).unwrap_err(),
            *want,
            "{}",
            String::from_utf8_lossy(msg)
        );
        // A failed exchange cannot be continued.
        assert_eq!(s.server_first(None), Err(ScramError::OutOfOrder));
    }
    let mut s = ScramServer::new(&server_nonce(), MOCK_SECRET);
    assert_eq!(
        s.client_first(&vec![b'n'; MAX_MESSAGE_LEN + 1]),
        Err(ScramError::TooLarge)
    );
    // Unknown optional extensions are ignored.
    let mut s = ScramServer::new(&server_nonce(), MOCK_SECRET);
    assert_eq!(s.client_first(b"n,,n=a,r=x,foo=bar"), Ok("a"));
}

#[test]
fn client_final_refusals() {
    let cred = ScramCredential::derive(b"pw", b"salt", 4096).unwrap();
    let setup = || {
        let (mut c, first) = Client::new("u", b"pw", "n,,");
        let mut s = ScramServer::new(&server_nonce(), MOCK_SECRET);
        s.client_first(&first).unwrap();
        let sf = s.server_first(Some(cred.clone())).unwrap();
        let good = String::from_utf8(c.finish(&sf)).unwrap();
        (s, good)
    };
    let (_, good) = setup();
    let nonce = good
        .split(",r=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let proof = good.split(",p=").nth(1).unwrap().to_string();
    let cases: Vec<(String, ScramError)> = vec![
        (
            good.replace("c=biws", "c=eSws"),
            ScramError::ChannelBindingMismatch,
        ),
        (
            good.replace(&nonce, &format!("{nonce}X")),
            ScramError::NonceMismatch,
        ),
        (
            good.replace(",p=", ",x=1,q="),
            ScramError::Malformed("no proof"),
        ),
        (
            good.replace("c=biws,", ""),
            ScramError::Malformed("expected c="),
        ),
        (
            good.replace("c=biws", "c=!!"),
            ScramError::Malformed("c= is not base64"),
        ),
        (
            format!("c=biws,p={proof}"),
            ScramError::Malformed("expected r="),
        ),
        (
            good.replace(&proof, "AAAA"),
            ScramError::Malformed("proof has the wrong length"),
        ),
        (
            good.replace(&proof, &B64.encode([7u8; 64])),
            ScramError::InvalidCredentials,
        ),
    ];
    for (msg, want) in cases {
        let (mut s, _) = setup();
        assert_eq!(s.client_final(msg.as_bytes()).unwrap_err(), want, "{msg}");
    }
    // Out of order: client_final before server_first.
    let mut s = ScramServer::new(&server_nonce(), MOCK_SECRET);
    s.client_first(b"n,,n=u,r=x").unwrap();
    assert_eq!(s.client_final(good.as_bytes()), Err(ScramError::OutOfOrder));
    let (mut s, good) = setup();
    assert_eq!(
        s.client_final(good.as_bytes()).map(|(_, u)| u),
        Ok("u".into())
    );
}

/// librdkafka before 2.6.1 (issue #4895) builds `r=` as its nonce followed by the server's whole
/// `r=`, and signs that message as sent. This client does the same, with the client nonce from a
/// real kcat 1.7.1 (librdkafka 2.0.2) capture.
#[test]
fn librdkafka_doubled_client_nonce() {
    /// Builds the `r=` to send from the client nonce and the server's `r=`.
    type SentNonce = dyn Fn(&str, &str) -> String;
    const KCAT_NONCE: &str = "U\\[-8HwJ~aVMRBmk=/UY`MkijZ4h31w=";
    let cred =
        ScramCredential::derive(b"s3cret", b"0123456789abcdef0123456789abcdef", 4096).unwrap();
    let exchange = |sent_nonce: &SentNonce| {
        let (mut client, first) = Client::with_nonce("alice", b"s3cret", "n,,", KCAT_NONCE);
        let mut server = ScramServer::new(&server_nonce(), MOCK_SECRET);
        server.client_first(&first)?;
        let sf = server.server_first(Some(cred.clone()))?;
        let cf = client.finish_sending_nonce(&sf, sent_nonce);
        let (fin, user) = server.client_final(&cf)?;
        // The server signed the same AuthMessage the client did (doubled nonce included).
        assert_eq!(
            fin,
            format!("v={}", B64.encode(client.server_signature)).into_bytes()
        );
        Ok::<_, ScramError>(user)
    };
    let server_part = B64.encode(server_nonce());

    // What kcat sends: client nonce, then the full nonce (client nonce + server nonce).
    let doubled = move |c: &str, r: &str| {
        let sent = format!("{c}{r}");
        assert_eq!(sent, format!("{KCAT_NONCE}{KCAT_NONCE}{server_part}"));
        sent
    };
    assert_eq!(exchange(&doubled), Ok("alice".into()));
    // The RFC form still works.
    assert_eq!(exchange(&|_, r| r.to_string()), Ok("alice".into()));

    // Anything else is refused even with a proof that verifies over it: a different prefix of the
    // same length, one character off in the prefix, a prefix one longer or shorter, the client
    // nonce three times, and the bare server part or any prefix + server part (which Kafka 3.8.1's
    // ends-with check would accept).
    let refused: &[&SentNonce] = &[
        &|c, r| format!("{}{r}", "A".repeat(c.len())),
        &|c, r| format!("{}x{r}", &c[..c.len() - 1]),
        &|c, r| format!("{c}{c}{r}"),
        &|c, r| format!("{c}={r}"),
        &|c, r| format!("{}{r}", &c[1..]),
        &|_, r| r[KCAT_NONCE.len()..].to_string(),
        &|_, r| format!("Zz{}", &r[KCAT_NONCE.len()..]),
        &|c, _| format!("{c}{c}"),
        &|c, r| format!("{c}{r}X"),
    ];
    for (i, sent_nonce) in refused.iter().enumerate() {
        assert_eq!(
            exchange(sent_nonce),
            Err(ScramError::NonceMismatch),
            "case {i}"
        );
    }

    // A doubled nonce does not excuse a wrong password.
    let (mut client, first) = Client::with_nonce("alice", b"wrong", "n,,", KCAT_NONCE);
    let mut server = ScramServer::new(&server_nonce(), MOCK_SECRET);
    server.client_first(&first).unwrap();
    let sf = server.server_first(Some(cred.clone())).unwrap();
    let cf = client.finish_sending_nonce(&sf, |c, r| format!("{c}{r}"));
    assert_eq!(
        server.client_final(&cf),
        Err(ScramError::InvalidCredentials)
    );
}

/// Random and mutated messages never panic and never authenticate.
#[test]
fn mutated_messages_never_panic_or_pass() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5c7a);
    let cred = ScramCredential::derive(V_PASSWORD, V_SALT, 4096).unwrap();
    let alphabet = b"nyp=,ar2C3Dcv+/0AZ\xff";
    for round in 0..2000 {
        let mut first = V_CLIENT_FIRST.as_bytes().to_vec();
        let mut fin = V_CLIENT_FINAL.as_bytes().to_vec();
        let target = if round % 2 == 0 { &mut first } else { &mut fin };
        for _ in 0..rng.gen_range(1..4) {
            let i = rng.gen_range(0..target.len());
            match rng.gen_range(0..3) {
                0 => target[i] = alphabet[rng.gen_range(0..alphabet.len())],
                1 => {
                    target.remove(i);
                }
                _ => target.insert(i, alphabet[rng.gen_range(0..alphabet.len())]),
            }
        }
        let mut s = ScramServer::new(&server_nonce(), MOCK_SECRET);
        if s.client_first(&first).is_err() {
            continue;
        }
        let user_ok = s.client_first_user_is("al,ice=x");
        s.server_first(Some(cred.clone())).unwrap();
        let result = s.client_final(&fin);
        // Only the untouched final message (with an unchanged user and nonce) may pass.
        if result.is_ok() {
            assert!(user_ok && fin == V_CLIENT_FINAL.as_bytes(), "round {round}");
        }
    }
}

impl ScramServer {
    fn client_first_user_is(&self, user: &str) -> bool {
        matches!(&self.state, State::FirstReceived { username, .. } if username == user)
    }
}
