//! The subject common name of a client certificate, read with a minimal DER walker.
//!
//! Only called on certificates that rustls has already verified against the listener's client
//! CA, but still written for hostile input: every length is checked before slicing and nothing
//! panics. Reads `Certificate → tbsCertificate → subject → RDN sets → CN (2.5.4.3)`.

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const EXPLICIT_0: u8 = 0xa0;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
/// id-at-commonName, 2.5.4.3, as DER content bytes.
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];
/// Longest CN accepted (X.520's upper bound is 64; leave room for UTF-8).
const MAX_CN: usize = 256;

/// One DER element: its tag and content, and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    // High tag numbers (low bits all set) never occur where this reads.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

/// Reads an element that must have `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, content, rest) = tlv(input)?;
    (t == tag).then_some((content, rest))
}

/// The subject CN of a DER certificate: `None` if the certificate does not parse, has no CN,
/// has several (ambiguous as a principal), or has one that is empty, too long, not a UTF-8,
/// printable or IA5 string, or contains control characters.
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, optional.
    if let Some((EXPLICIT_0, _, after)) = tlv(rest) {
        rest = after;
    }
    // serialNumber, signature, issuer, validity: skipped.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    let (subject, _) = expect(rest, SEQUENCE)?;
    let mut found: Option<String> = None;
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (set, next) = expect(rdns, SET)?;
        rdns = next;
        let mut attrs = set;
        while !attrs.is_empty() {
            let (attr, next) = expect(attrs, SEQUENCE)?;
            attrs = next;
            let (oid, value) = expect(attr, OID)?;
            if oid != CN_OID {
                continue;
            }
            if found.is_some() {
                return None;
            }
            let (tag, bytes, _) = tlv(value)?;
            if !matches!(tag, UTF8_STRING | PRINTABLE_STRING | IA5_STRING) {
                return None;
            }
            let cn = std::str::from_utf8(bytes).ok()?;
            if cn.is_empty() || cn.len() > MAX_CN || cn.chars().any(char::is_control) {
                return None;
            }
            found = Some(cn.to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    fn cert_with(dn: &[(DnType, &str)]) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["client.test".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (t, v) in dn {
            params.distinguished_name.push(t.clone(), *v);
        }
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_the_cn_among_other_attributes() {
        let der = cert_with(&[
            (DnType::CountryName, "NO"),
            (DnType::OrganizationName, "Tenant A"),
            (DnType::CommonName, "alice"),
        ]);
        assert_eq!(subject_common_name(&der).as_deref(), Some("alice"));
    }

    #[test]
    fn no_cn_or_garbage_is_none() {
        let der = cert_with(&[(DnType::OrganizationName, "Tenant A")]);
        assert_eq!(subject_common_name(&der), None);
        assert_eq!(subject_common_name(&[]), None);
        assert_eq!(
            subject_common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        // Every truncation of a real certificate is refused without panicking.
        let der = cert_with(&[(DnType::CommonName, "bob")]);
        for n in 0..der.len() {
            assert_eq!(subject_common_name(&der[..n]), None, "truncated at {n}");
        }
        // Flipping bytes never panics either.
        for i in 0..der.len() {
            let mut d = der.clone();
            d[i] ^= 0xff;
            let _ = subject_common_name(&d);
        }
    }
}
