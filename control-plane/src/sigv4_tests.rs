//! Vectors from AWS's SigV4 test suite (the `aws-signing-test-suite/v4` files shipped with
//! `aws-sigv4`): each request, as a server receives it, must verify with the suite's
//! signature, and its canonical request must be the suite's.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20150830T123600Z";
const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn now() -> i64 {
    time::parse_amz_date(DATE).expect("valid date")
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    map
}

fn auth(signed: &str, signature: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed}, Signature={signature}")
}

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: &'static [u8],
    canonical: String,
}

fn verify_vector(v: &Vector) {
    let pairs: Vec<(&str, &str)> = v.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let map = headers(&pairs);
    let req = ReceivedRequest {
        method: v.method,
        path: v.path,
        query: v.query,
        headers: &map,
        body: v.body,
    };
    let checked = check(&req, "us-east-1", "service", now(), 900_000)
        .unwrap_or_else(|e| panic!("{}: {e}", v.name));
    let signed: Vec<&str> = checked.authorization.signed_headers.split(';').collect();
    let payload = hex::encode(Sha256::digest(v.body));
    let canonical = canonical_request(
        &req,
        &signed,
        &checked.authorization.signed_headers,
        &payload,
    )
    .expect("canonical");
    assert_eq!(canonical, v.canonical, "{}", v.name);
    checked
        .verify(SECRET)
        .unwrap_or_else(|e| panic!("{}: {e}", v.name));
    assert_eq!(
        checked.verify("another secret"),
        Err(SigV4Error::SignatureMismatch),
        "{}",
        v.name
    );
}

fn get(name: &'static str, path: &'static str, query: Option<&'static str>) -> Vector {
    Vector {
        name,
        method: "GET",
        path,
        query,
        headers: vec![
            ("host", "example.amazonaws.com".into()),
            ("x-amz-date", DATE.into()),
        ],
        body: b"",
        canonical: String::new(),
    }
}

#[test]
fn get_vanilla() {
    let mut v = get("get-vanilla", "/", None);
    v.headers.push((
        "authorization",
        auth(
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
    ));
    v.canonical = format!(
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY_SHA}"
    );
    verify_vector(&v);
}

#[test]
fn get_vanilla_query_order_key_case() {
    let mut v = get(
        "get-vanilla-query-order-key-case",
        "/",
        Some("Param2=value2&Param1=value1"),
    );
    v.headers.push((
        "authorization",
        auth(
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ));
    v.canonical = format!("GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY_SHA}");
    verify_vector(&v);
}

#[test]
fn get_vanilla_query_unreserved_and_utf8_query() {
    const U: &str = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let query: &'static str = Box::leak(format!("{U}={U}").into_boxed_str());
    let mut v = get("get-vanilla-query-unreserved", "/", Some(query));
    v.headers.push((
        "authorization",
        auth(
            "host;x-amz-date",
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        ),
    ));
    v.canonical = format!("GET\n/\n{U}={U}\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY_SHA}");
    verify_vector(&v);

    // `?ሴ=bar` as it travels: percent-encoded UTF-8.
    let mut v = get("get-vanilla-utf8-query", "/", Some("%E1%88%B4=bar"));
    v.headers.push((
        "authorization",
        auth(
            "host;x-amz-date",
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        ),
    ));
    v.canonical = format!("GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY_SHA}");
    verify_vector(&v);
}

#[test]
fn get_header_value_trim_and_duplicate_keys() {
    let mut v = get("get-header-value-trim", "/", None);
    v.headers.push(("my-header1", " value1".into()));
    v.headers.push(("my-header2", "\"a   b   c\"".into()));
    v.headers.push((
        "authorization",
        auth(
            "host;my-header1;my-header2;x-amz-date",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        ),
    ));
    v.canonical = format!("GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:{DATE}\n\nhost;my-header1;my-header2;x-amz-date\n{EMPTY_SHA}");
    verify_vector(&v);

    let mut v = get("get-header-key-duplicate", "/", None);
    for value in ["value2", "value2", "value1"] {
        v.headers.push(("my-header1", value.into()));
    }
    v.headers.push((
        "authorization",
        auth(
            "host;my-header1;x-amz-date",
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        ),
    ));
    v.canonical = format!("GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:{DATE}\n\nhost;my-header1;x-amz-date\n{EMPTY_SHA}");
    verify_vector(&v);
}

#[test]
fn get_slashes_and_relative_paths_are_normalized() {
    let mut v = get("get-slashes-normalized", "//example//", None);
    v.headers.push((
        "authorization",
        auth(
            "host;x-amz-date",
            "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
        ),
    ));
    v.canonical = format!("GET\n/example/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY_SHA}");
    verify_vector(&v);

    let mut v = get(
        "get-relative-relative-normalized",
        "/example1/example2/../..",
        None,
    );
    v.headers.push((
        "authorization",
        auth(
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
    ));
    v.canonical = format!(
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY_SHA}"
    );
    verify_vector(&v);
}

#[test]
fn get_vanilla_with_session_token() {
    let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    let mut v = get("get-vanilla-with-session-token", "/", None);
    v.headers.push(("x-amz-security-token", token.into()));
    v.headers.push((
        "authorization",
        auth(
            "host;x-amz-date;x-amz-security-token",
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        ),
    ));
    v.canonical = format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\nx-amz-security-token:{token}\n\nhost;x-amz-date;x-amz-security-token\n{EMPTY_SHA}");
    verify_vector(&v);
}

#[test]
fn post_x_www_form_urlencoded() {
    let body_sha = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
    let v = Vector {
        name: "post-x-www-form-urlencoded",
        method: "POST",
        path: "/",
        query: None,
        headers: vec![
            ("content-type", "application/x-www-form-urlencoded".into()),
            ("host", "example.amazonaws.com".into()),
            ("content-length", "13".into()),
            ("x-amz-date", DATE.into()),
            ("x-amz-content-sha256", body_sha.into()),
            ("authorization", auth("content-length;content-type;host;x-amz-content-sha256;x-amz-date", "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b")),
        ],
        body: b"Param1=value1",
        canonical: format!("POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-content-sha256:{body_sha}\nx-amz-date:{DATE}\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n{body_sha}"),
    };
    verify_vector(&v);
}

/// The suite's `double-encode-path`: non-S3 services sign the received path encoded again.
#[test]
fn double_encode_path_canonical_uri() {
    assert_eq!(
        canonical_uri("/test/@connections/JBDvjfGEIAMCERw%3D"),
        "/test/%40connections/JBDvjfGEIAMCERw%253D"
    );
    assert_eq!(
        canonical_uri("/api/v2/clusters/arn%3Aaws%3Akafka%3Aus-east-1%3A123456789012%3Acluster%2Fc%2Fid"),
        "/api/v2/clusters/arn%253Aaws%253Akafka%253Aus-east-1%253A123456789012%253Acluster%252Fc%252Fid"
    );
    assert_eq!(canonical_uri(""), "/");
}

fn vanilla_request(map: &HeaderMap) -> ReceivedRequest<'_> {
    ReceivedRequest {
        method: "GET",
        path: "/",
        query: None,
        headers: map,
        body: b"",
    }
}

#[test]
fn refusals_before_the_secret_is_needed() {
    let good = auth(
        "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
    let base = [("host", "example.amazonaws.com"), ("x-amz-date", DATE)];
    let with = |extra: &[(&'static str, &str)]| {
        let mut pairs: Vec<(&str, &str)> = base.to_vec();
        pairs.extend_from_slice(extra);
        headers(&pairs)
    };
    let run = |map: &HeaderMap, region: &str, service: &'static str, now_ms: i64| {
        check(&vanilla_request(map), region, service, now_ms, 900_000).map(|_| ())
    };
    assert_eq!(
        run(&with(&[]), "us-east-1", "service", now()),
        Err(SigV4Error::MissingAuthorization)
    );
    let map = with(&[("authorization", &good)]);
    assert!(run(&map, "us-east-1", "service", now()).is_ok());
    assert!(matches!(
        run(&map, "eu-west-1", "service", now()),
        Err(SigV4Error::WrongRegion { .. })
    ));
    assert!(matches!(
        run(&map, "us-east-1", "kafka", now()),
        Err(SigV4Error::WrongService { .. })
    ));
    assert!(matches!(
        run(&map, "us-east-1", "service", now() + 900_001),
        Err(SigV4Error::Skew { .. })
    ));
    assert!(matches!(
        run(&map, "us-east-1", "service", now() - 900_001),
        Err(SigV4Error::Skew { .. })
    ));
    assert!(run(&map, "us-east-1", "service", now() + 900_000).is_ok());

    let no_host_signed = auth("x-amz-date", &"0".repeat(64));
    assert_eq!(
        run(
            &with(&[("authorization", &no_host_signed)]),
            "us-east-1",
            "service",
            now()
        ),
        Err(SigV4Error::UnsignedHeader("host"))
    );
    let unsigned_token = with(&[("authorization", &good), ("x-amz-security-token", "t")]);
    assert_eq!(
        run(&unsigned_token, "us-east-1", "service", now()),
        Err(SigV4Error::UnsignedHeader("x-amz-security-token"))
    );
    let missing = auth("host;my-header;x-amz-date", &"0".repeat(64));
    assert_eq!(
        run(
            &with(&[("authorization", &missing)]),
            "us-east-1",
            "service",
            now()
        ),
        Err(SigV4Error::MissingSignedHeader("my-header".into()))
    );
    let wrong_hash = with(&[("authorization", &good), ("x-amz-content-sha256", "abc")]);
    assert_eq!(
        run(&wrong_hash, "us-east-1", "service", now()),
        Err(SigV4Error::PayloadHashMismatch)
    );
    let other_day = good.replace("20150830", "20150831");
    assert_eq!(
        run(
            &with(&[("authorization", &other_day)]),
            "us-east-1",
            "service",
            now()
        ),
        Err(SigV4Error::ScopeDateMismatch)
    );
    let mut no_date = headers(&[("host", "example.amazonaws.com")]);
    no_date.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&good).expect("ascii"),
    );
    assert_eq!(
        run(&no_date, "us-east-1", "service", now()),
        Err(SigV4Error::BadDate)
    );
}

#[test]
fn malformed_authorization_headers() {
    let cases = [
        "",
        "AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=XYZ",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Credential=a/b/c/d/aws4_request",
        "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Bogus=1",
    ];
    for c in cases {
        assert!(parse_authorization(c).is_err(), "{c:?}");
    }
    let long = format!("AWS4-HMAC-SHA256 {}", "x".repeat(5000));
    assert!(parse_authorization(&long).is_err());
}

/// Arbitrary headers, paths and queries never panic the parser or the canonicalizer.
#[test]
fn random_inputs_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let pieces = [
        "AWS4-HMAC-SHA256 ",
        "Credential=",
        "SignedHeaders=",
        "Signature=",
        "/",
        ",",
        ";",
        "=",
        "aws4_request",
        "host",
        "x-amz-date",
        "%",
        "%E1",
        "%zz",
        "..",
        "&",
        " ",
        "ሴ",
        "\t",
        "20150830",
        "us-east-1",
        "service",
        &"a".repeat(64),
    ];
    let random_text = |rng: &mut rand::rngs::StdRng| {
        let n = rng.gen_range(0..12);
        (0..n)
            .map(|_| pieces[rng.gen_range(0..pieces.len())])
            .collect::<String>()
    };
    for _ in 0..5000 {
        let auth = random_text(&mut rng);
        let path = format!("/{}", random_text(&mut rng));
        let query = random_text(&mut rng);
        let _ = parse_authorization(&auth);
        let mut map = headers(&[("host", "h"), ("x-amz-date", DATE)]);
        if let Ok(v) = HeaderValue::from_str(&auth) {
            map.insert(http::header::AUTHORIZATION, v);
        }
        let req = ReceivedRequest {
            method: "GET",
            path: &path,
            query: Some(&query),
            headers: &map,
            body: b"",
        };
        if let Ok(checked) = check(&req, "us-east-1", "service", now(), 900_000) {
            assert!(checked.verify(SECRET).is_err());
        }
        let _ = canonical_uri(&path);
        let _ = canonical_query(&query);
    }
}
