//! What the first bytes a client sends on a captured TCP connection say
//! about where it wants to go: the server_name of a TLS ClientHello or the
//! Host of an HTTP/1.x request, so that the gate can admit the connection
//! by name. Pure: the caller reads, this only looks.
//!
//! Anything that starts like TLS or HTTP but is malformed or ambiguous is
//! refused (`Bad`) rather than guessed at: the server may read an odd
//! message differently, and then the name checked would not be the name
//! used. Parsing is strict for the same reason: every length must add up.

use std::net::{Ipv4Addr, Ipv6Addr};

use tls_parser::{
    TlsExtension, TlsExtensionType, parse_tls_extension_unknown, parse_tls_handshake_client_hello,
};

use super::names::normalize;

#[derive(Debug, PartialEq, Eq)]
pub enum Sniff {
    /// Not enough bytes yet to decide; read more (the caller stops at
    /// MAX_SNIFF bytes or a timeout).
    NeedMore,
    /// A TLS ClientHello. `sni` is the server_name, normalized (None when
    /// absent, ambiguous, an address or not a host name); `ech` is true when
    /// the ClientHello carries encrypted_client_hello (or its draft
    /// predecessor, encrypted_server_name): then `sni` is only the outer,
    /// public name.
    Tls { sni: Option<String>, ech: bool },
    /// An HTTP/1.x request: the host it names (Host header or absolute
    /// request target, port stripped), normalized; None when it names none
    /// or only an address.
    Http { host: Option<String> },
    /// Neither TLS nor HTTP (ssh, git://, iperf): decided by address, not
    /// name.
    Other,
    /// It starts like TLS or HTTP but is malformed or ambiguous: refuse.
    /// The text is the reason shown to users.
    Bad(&'static str),
}

/// The most a caller needs to read: one whole TLS plaintext record.
pub const MAX_SNIFF: usize = 16 * 1024 + 5;

pub fn sniff(buf: &[u8]) -> Sniff {
    match buf.first() {
        None => Sniff::NeedMore,
        Some(&HANDSHAKE_RECORD) => tls(buf),
        Some(_) => http(buf),
    }
}

const HANDSHAKE_RECORD: u8 = 0x16;
const RECORD_HEADER: usize = 5;
/// RFC 8446 §5.1: a plaintext record carries at most 2^14 bytes, so a
/// whole record always fits in MAX_SNIFF.
const MAX_RECORD: usize = 1 << 14;
const HANDSHAKE_HEADER: usize = 4;
const CLIENT_HELLO: u8 = 1;
const SERVER_NAME: u16 = 0;
const ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;
/// draft-ietf-tls-esni, ECH's predecessor: it hides the name as well.
const ENCRYPTED_SERVER_NAME: u16 = 0xffce;
/// RFC 6066 §3.
const HOST_NAME: u8 = 0;

const MALFORMED_RECORD: &str = "malformed TLS record";
const MALFORMED_HELLO: &str = "malformed TLS ClientHello";
const FRAGMENTED: &str = "fragmented TLS ClientHello";

/// A ClientHello must sit whole in the first record. Each header check
/// runs as soon as its bytes are in, so a client that is not speaking TLS
/// is refused without waiting for a record that will never come.
fn tls(buf: &[u8]) -> Sniff {
    // Record versions 3.0 (SSL 3) to 3.4; clients send 3.1 or 3.3.
    if buf.get(1).is_some_and(|&major| major != 3) || buf.get(2).is_some_and(|&minor| minor > 4) {
        return Sniff::Bad(MALFORMED_RECORD);
    }
    let Some(len) = be(buf, 3, 2) else {
        return Sniff::NeedMore;
    };
    if len == 0 || len > MAX_RECORD {
        return Sniff::Bad(MALFORMED_RECORD);
    }
    if buf.get(5).is_some_and(|&t| t != CLIENT_HELLO) {
        return Sniff::Bad("TLS handshake that does not start with a ClientHello");
    }
    if let Some(hello_len) = be(buf, 6, 3) {
        if HANDSHAKE_HEADER + hello_len > len {
            return Sniff::Bad(FRAGMENTED);
        }
        if HANDSHAKE_HEADER + hello_len < len {
            return Sniff::Bad("data after the TLS ClientHello in its record");
        }
    }
    let Some(record) = buf.get(RECORD_HEADER..RECORD_HEADER + len) else {
        return Sniff::NeedMore;
    };
    match record.get(HANDSHAKE_HEADER..) {
        Some(body) => client_hello(body),
        // A whole record too short for even the handshake header.
        None => Sniff::Bad(FRAGMENTED),
    }
}

/// The big-endian number of `n` bytes at `at`, when they are all there.
fn be(buf: &[u8], at: usize, n: usize) -> Option<usize> {
    let bytes = buf.get(at..at + n)?;
    Some(bytes.iter().fold(0, |v, &b| (v << 8) | usize::from(b)))
}

/// The body of a ClientHello handshake message, exactly.
fn client_hello(body: &[u8]) -> Sniff {
    let hello = match parse_tls_handshake_client_hello(body) {
        Ok(([], hello)) => hello,
        // Trailing bytes, such as an extension block that overruns the
        // message, which the parser takes for no extensions at all.
        _ => return Sniff::Bad(MALFORMED_HELLO),
    };
    let Some(extensions) = extensions(hello.ext.unwrap_or_default()) else {
        return Sniff::Bad(MALFORMED_HELLO);
    };
    let mut types: Vec<u16> = extensions.iter().map(|&(t, _)| t).collect();
    types.sort_unstable();
    if types.windows(2).any(|w| w[0] == w[1]) {
        // Servers refuse these (RFC 8446 §4.2), and which copy one would
        // use is anyone's guess.
        return Sniff::Bad("duplicate TLS extension");
    }
    let sni = match extensions.iter().find(|&&(t, _)| t == SERVER_NAME) {
        None => None,
        Some(&(_, data)) => match server_name(data) {
            Some(sni) => sni,
            None => return Sniff::Bad(MALFORMED_HELLO),
        },
    };
    let ech = types
        .iter()
        .any(|&t| t == ENCRYPTED_CLIENT_HELLO || t == ENCRYPTED_SERVER_NAME);
    Sniff::Tls { sni, ech }
}

/// The extension block as (type, data), None unless the lengths add up
/// exactly. Each step consumes at least the 4-byte extension header.
fn extensions(mut block: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    while !block.is_empty() {
        match parse_tls_extension_unknown(block) {
            Ok((rest, TlsExtension::Unknown(TlsExtensionType(t), data))) => {
                out.push((t, data));
                block = rest;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The server_name extension's data (RFC 6066 §3): None when malformed;
/// Some(None) when it names no single host: no host_name entry, two of
/// them, an address or text that is not a host name.
fn server_name(data: &[u8]) -> Option<Option<String>> {
    let list_len = be(data, 0, 2)?;
    let mut list = data.get(2..)?;
    if list_len == 0 || list.len() != list_len {
        return None;
    }
    let mut names = Vec::new();
    while let [name_type, ..] = *list {
        let len = be(list, 1, 2)?;
        let name = list.get(3..3 + len)?;
        if name_type == HOST_NAME {
            names.push(name);
        }
        list = &list[3 + len..];
    }
    Some(match names[..] {
        [name] => std::str::from_utf8(name).ok().and_then(normalize),
        _ => None,
    })
}

/// At most this many request headers are read, as servers commonly allow
/// about as many.
const MAX_HEADERS: usize = 64;
/// Longer than any method in use ("UPDATEREDIRECTREF" has 17).
const MAX_METHOD: usize = 32;

/// HTTP/1.x when the request line starts with an uppercase token and a
/// space (after the empty lines servers skip, RFC 9112 §2.2).
fn http(buf: &[u8]) -> Sniff {
    let Some(start) = buf.iter().position(|&b| b != b'\r' && b != b'\n') else {
        return if buf.len() < MAX_SNIFF {
            Sniff::NeedMore
        } else {
            Sniff::Other
        };
    };
    let line = &buf[start..];
    match method(line) {
        Some(true) => {}
        Some(false) => return Sniff::NeedMore,
        None => return Sniff::Other,
    }
    if line.starts_with(b"PRI * HTTP/2") {
        // The h2c preface: the name is in HPACK-compressed frames.
        return Sniff::Bad("HTTP/2 without TLS is not supported");
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => request(&req),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_SNIFF => {
            Sniff::Bad("request headers too long")
        }
        Ok(httparse::Status::Partial) => Sniff::NeedMore,
        Err(httparse::Error::TooManyHeaders) => Sniff::Bad("more than 64 request headers"),
        Err(_) => Sniff::Bad("malformed HTTP request"),
    }
}

/// Whether `line` starts with a method and a space: Some(true) yes,
/// Some(false) not yet known, None no.
fn method(line: &[u8]) -> Option<bool> {
    for (i, &b) in line.iter().enumerate() {
        if b == b' ' && i > 0 {
            return Some(true);
        }
        let token = b.is_ascii_uppercase() || (i > 0 && (b == b'-' || b == b'_'));
        if !token || i == MAX_METHOD {
            return None;
        }
    }
    Some(false)
}

/// Where a Host header or a request target points.
#[derive(Debug, PartialEq, Eq)]
enum Dest {
    Name(String),
    /// An address literal, or no host at all.
    NoName,
    Invalid,
}

/// A whole request head.
fn request(req: &httparse::Request) -> Sniff {
    if req.method == Some("CONNECT") {
        return Sniff::Bad("CONNECT is not allowed");
    }
    let mut hosts = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"));
    let host = match (hosts.next(), hosts.next()) {
        (None, _) => None,
        (Some(h), None) => Some(match std::str::from_utf8(h.value) {
            Ok(v) => authority(v.trim_matches([' ', '\t'])),
            Err(_) => Dest::Invalid,
        }),
        (Some(_), Some(_)) => return Sniff::Bad("two Host headers"),
    };
    let target = target(req.path.unwrap_or_default());
    // RFC 9112 §3.2.2: a server goes by an absolute target's authority
    // and ignores Host; both must agree, or the name checked here could
    // differ from the one served.
    let dest = match (target, host) {
        (Some(Dest::Invalid), _) => return Sniff::Bad("malformed request target"),
        (_, Some(Dest::Invalid)) => return Sniff::Bad("Host header is not a host name"),
        (Some(t), Some(h)) if t != h => return Sniff::Bad("request target names another host"),
        (Some(d), _) | (None, Some(d)) => d,
        (None, None) => Dest::NoName,
    };
    Sniff::Http {
        host: match dest {
            Dest::Name(name) => Some(name),
            _ => None,
        },
    }
}

/// What an absolute-form request target ("http://host/") names; None for
/// origin form ("/path") and asterisk form ("*"), which name no host.
fn target(path: &str) -> Option<Dest> {
    if path.starts_with('/') || path == "*" {
        return None;
    }
    let Some((scheme, rest)) = path.split_once("://") else {
        return Some(Dest::Invalid);
    };
    let auth = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    // User info ("http://a@b/") is deprecated and a classic disguise.
    if !http || auth.is_empty() || auth.contains('@') {
        return Some(Dest::Invalid);
    }
    Some(authority(auth))
}

/// "host[:port]", "IPv4[:port]" or "[IPv6][:port]"; empty is no host.
fn authority(text: &str) -> Dest {
    if text.is_empty() {
        return Dest::NoName;
    }
    let (host, port) = match text.rfind(':') {
        // An IPv6 literal has colons inside its brackets; a port comes
        // after the ']'.
        Some(i) if !text[i..].contains(']') => (&text[..i], &text[i + 1..]),
        _ => (text, ""),
    };
    if port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Dest::Invalid;
    }
    if let Some(inside) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match inside.parse::<Ipv6Addr>() {
            Ok(_) => Dest::NoName,
            Err(_) => Dest::Invalid,
        };
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Dest::NoName;
    }
    normalize(host).map_or(Dest::Invalid, Dest::Name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl s_client -connect 127.0.0.1:PORT -servername pkg.test`
    /// (OpenSSL 3.0.19), captured with socat.
    const OPENSSL_PKG_TEST: &str = concat!(
        "1603010135010001310303b28281250f3a1defde0a985b3c7a90224ea9e6d1f5d27d2b203ae4f609",
        "e9156920193eb5b5737562878d4222da367e1053b85d21d5732b1bbcbea4bf2e1443d319003e1302",
        "13031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039",
        "c009c0130033009d009c003d003c0035002f00ff010000aa0000000d000b000008706b672e746573",
        "74000b000403000102000a00160014001d0017001e00190018010001010102010301040023000000",
        "16000000170000000d002a0028040305030603080708080809080a080b0804080508060401050106",
        "01030303010302040205020602002b0009080304030303020301002d00020101003300260024001d",
        "002000e73b2d68cb0c050e7d44914fd2c99c6c8589afae94b3c3b2468242c7f8bd39",
    );
    /// `openssl s_client -noservername` (OpenSSL 3.0.19).
    const OPENSSL_NO_SNI: &str = concat!(
        "1603010124010001200303269f702db107f719cf851373217b08e6f8d4d3d54fc2814f4398b812b2",
        "869d0820a7fd6a9d0a6026b1d865ea11fde1fe954f208862e4f8a8dd2d9949d942cfa4ef003e1302",
        "13031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039",
        "c009c0130033009d009c003d003c0035002f00ff01000099000b000403000102000a00160014001d",
        "0017001e0019001801000101010201030104002300000016000000170000000d002a002804030503",
        "0603080708080809080a080b080408050806040105010601030303010302040205020602002b0009",
        "080304030303020301002d00020101003300260024001d0020963edb2e0b11aa86439ef14dcb74aa",
        "ab24fc66c0a82ade60f3db41376afaab08",
    );
    /// `openssl s_client -servername crates.io -tls1_2` (OpenSSL 3.0.19).
    const OPENSSL_TLS12_CRATES_IO: &str = concat!(
        "16030100c9010000c503035046c7f302fc5cae09434c494db2e2b5a61682a497231fb4d03af50b0e",
        "924dee000038c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac014",
        "0039c009c0130033009d009c003d003c0035002f00ff010000640000000e000c0000096372617465",
        "732e696f000b000403000102000a000c000a001d0017001e00190018002300000016000000170000",
        "000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302",
        "040205020602",
    );
    /// Python 3's ssl module, `wrap_socket(s, server_hostname='PyPI.org')`
    /// (OpenSSL 3.0.19; padded to 517 bytes).
    const PYTHON_PYPI: &str = concat!(
        "1603010200010001fc0303e6cf355c1a27b5edf94fe60a9bfa0ad963722962b5b2bdb583d81c9f0e",
        "0483e3200a9697b75d585cbbbfb894cd2591238682503cb0390bc86d9ebfa7fe50bc36d200241302",
        "13031301c02cc030c02bc02fcca9cca8c024c028c023c027009f009e006b006700ff0100018f0000",
        "000d000b000008507950492e6f7267000b000403000102000a00160014001d0017001e0019001801",
        "000101010201030104002300000016000000170000000d002a002804030503060308070808080908",
        "0a080b080408050806040105010601030303010302040205020602002b00050403040303002d0002",
        "0101003300260024001d002024aa6d811ef8560492cac5360e580b6b3f0410017bcefa2501d174a7",
        "c21fee29001500e50000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000",
        "00000000000000000000000000000000000000000000000000000000000000000000000000",
    );

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn tls(sni: Option<&str>, ech: bool) -> Sniff {
        Sniff::Tls {
            sni: sni.map(String::from),
            ech,
        }
    }

    fn http(host: Option<&str>) -> Sniff {
        Sniff::Http {
            host: host.map(String::from),
        }
    }

    fn u16b(n: usize) -> [u8; 2] {
        u16::try_from(n).unwrap().to_be_bytes()
    }

    /// A record holding one ClientHello with these extensions.
    fn hello(extensions: &[(u16, &[u8])]) -> Vec<u8> {
        let mut block = Vec::new();
        for (t, data) in extensions {
            block.extend(t.to_be_bytes());
            block.extend(u16b(data.len()));
            block.extend(*data);
        }
        let mut body = vec![3, 3];
        body.extend([7; 32]); // random
        body.push(0); // session id
        body.extend([0, 2, 0x13, 0x01]); // TLS_AES_128_GCM_SHA256
        body.extend([1, 0]); // null compression
        body.extend(u16b(block.len()));
        body.extend(block);
        record(&handshake(&body))
    }

    fn handshake(body: &[u8]) -> Vec<u8> {
        let mut msg = vec![CLIENT_HELLO];
        msg.extend(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
        msg.extend(body);
        msg
    }

    fn record(content: &[u8]) -> Vec<u8> {
        let mut rec = vec![HANDSHAKE_RECORD, 3, 1];
        rec.extend(u16b(content.len()));
        rec.extend(content);
        rec
    }

    /// A server_name extension's data with these (type, name) entries.
    fn sni_entries(entries: &[(u8, &[u8])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (t, name) in entries {
            list.push(*t);
            list.extend(u16b(name.len()));
            list.extend(*name);
        }
        let mut data = u16b(list.len()).to_vec();
        data.extend(list);
        data
    }

    fn sni(name: &str) -> Vec<u8> {
        sni_entries(&[(HOST_NAME, name.as_bytes())])
    }

    /// `hello` (one record, extensions last) with one more extension,
    /// every enclosing length fixed.
    fn append_extension(hello: &[u8], t: u16, data: &[u8]) -> Vec<u8> {
        let mut at = RECORD_HEADER + HANDSHAKE_HEADER + 2 + 32;
        at += 1 + usize::from(hello[at]); // session id
        at += 2 + be(hello, at, 2).unwrap(); // cipher suites
        at += 1 + usize::from(hello[at]); // compression methods
        let mut out = hello.to_vec();
        out.extend(t.to_be_bytes());
        out.extend(u16b(data.len()));
        out.extend(data);
        let grow = 4 + data.len();
        let ext_len = be(hello, at, 2).unwrap() + grow;
        out[at..at + 2].copy_from_slice(&u16b(ext_len));
        let hs_len = be(hello, 6, 3).unwrap() + grow;
        out[6..9].copy_from_slice(&u32::try_from(hs_len).unwrap().to_be_bytes()[1..]);
        let rec_len = be(hello, 3, 2).unwrap() + grow;
        out[3..5].copy_from_slice(&u16b(rec_len));
        out
    }

    /// An ECH extension in its outer form (RFC 9849 §5): HPKE suite,
    /// config id, encapsulated key, encrypted inner ClientHello.
    fn ech_outer() -> Vec<u8> {
        let mut d = vec![0]; // outer
        d.extend([0, 1, 0, 1]); // HKDF-SHA256, AES-128-GCM
        d.push(0x2a); // config id
        d.extend(u16b(32));
        d.extend([0x11; 32]);
        d.extend(u16b(200));
        d.extend([0x22; 200]);
        d
    }

    /// The xorshift64 generator: reproducible noise without a crate.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn real_client_hellos_give_their_server_name() {
        assert_eq!(sniff(&hex(OPENSSL_PKG_TEST)), tls(Some("pkg.test"), false));
        assert_eq!(sniff(&hex(OPENSSL_NO_SNI)), tls(None, false));
        assert_eq!(
            sniff(&hex(OPENSSL_TLS12_CRATES_IO)),
            tls(Some("crates.io"), false)
        );
        assert_eq!(sniff(&hex(PYTHON_PYPI)), tls(Some("pypi.org"), false));
    }

    #[test]
    fn bytes_after_the_first_record_do_not_matter() {
        let mut buf = hex(OPENSSL_PKG_TEST);
        buf.extend([0x17, 3, 3, 0, 5, 1, 2, 3, 4, 5]); // early data
        assert_eq!(sniff(&buf), tls(Some("pkg.test"), false));
    }

    #[test]
    fn every_truncation_of_a_client_hello_needs_more() {
        for capture in [
            OPENSSL_PKG_TEST,
            OPENSSL_NO_SNI,
            OPENSSL_TLS12_CRATES_IO,
            PYTHON_PYPI,
        ] {
            let buf = hex(capture);
            for n in 0..buf.len() {
                assert_eq!(sniff(&buf[..n]), Sniff::NeedMore, "{n} bytes");
            }
        }
    }

    #[test]
    fn ech_is_reported_with_the_outer_name() {
        let buf = append_extension(&hex(OPENSSL_PKG_TEST), ENCRYPTED_CLIENT_HELLO, &ech_outer());
        assert_eq!(sniff(&buf), tls(Some("pkg.test"), true));
        let buf = append_extension(&hex(PYTHON_PYPI), ENCRYPTED_CLIENT_HELLO, &ech_outer());
        assert_eq!(sniff(&buf), tls(Some("pypi.org"), true));
        for n in 0..buf.len() {
            assert_eq!(sniff(&buf[..n]), Sniff::NeedMore, "{n} bytes");
        }
        let buf = hello(&[(ENCRYPTED_SERVER_NAME, &[0; 40])]);
        assert_eq!(sniff(&buf), tls(None, true));
    }

    #[test]
    fn server_names_that_name_no_single_host_give_none() {
        let two = sni_entries(&[(HOST_NAME, b"a.test"), (HOST_NAME, b"b.test")]);
        let same_twice = sni_entries(&[(HOST_NAME, b"a.test"), (HOST_NAME, b"a.test")]);
        let other_type_only = sni_entries(&[(1, b"a.test")]);
        let bytes = sni_entries(&[(HOST_NAME, b"a.t\xffst")]);
        for data in [
            two,
            same_twice,
            other_type_only,
            sni("10.0.0.1"),
            sni("::1"),
            sni("[::1]"),
            sni("127.1"),
            sni(""),
            sni("a..test"),
            sni("a.test\0.evil.test"),
            sni("a.test:443"),
            bytes,
        ] {
            assert_eq!(
                sniff(&hello(&[(SERVER_NAME, &data)])),
                tls(None, false),
                "{data:?}"
            );
        }
        // An entry of another type beside the host name is skipped.
        let mixed = sni_entries(&[(1, b"x"), (HOST_NAME, b"Pkg.Test.")]);
        assert_eq!(
            sniff(&hello(&[(SERVER_NAME, &mixed)])),
            tls(Some("pkg.test"), false)
        );
    }

    #[test]
    fn malformed_server_name_extensions_are_refused() {
        let good = sni("pkg.test");
        let mut longer_list = good.clone();
        longer_list[1] += 1;
        let mut shorter_list = good.clone();
        shorter_list[1] -= 1;
        let mut longer_name = good.clone();
        longer_name[4] += 1;
        let mut trailing = good.clone();
        trailing.push(0);
        for data in [
            vec![],
            vec![0],
            vec![0, 0],
            longer_list,
            shorter_list,
            longer_name,
            trailing,
            good[..good.len() - 1].to_vec(),
        ] {
            assert_eq!(
                sniff(&hello(&[(SERVER_NAME, &data)])),
                Sniff::Bad(MALFORMED_HELLO),
                "{data:?}"
            );
        }
    }

    #[test]
    fn duplicate_extensions_are_refused() {
        let a = sni("a.test");
        let b = sni("b.test");
        let buf = hello(&[(SERVER_NAME, &a), (SERVER_NAME, &b)]);
        assert_eq!(sniff(&buf), Sniff::Bad("duplicate TLS extension"));
        let buf = hello(&[(SERVER_NAME, &a), (0x2b, &[2, 3, 4]), (0x2b, &[2, 3, 4])]);
        assert_eq!(sniff(&buf), Sniff::Bad("duplicate TLS extension"));
    }

    #[test]
    fn a_client_hello_without_extensions_has_no_name() {
        let mut body = vec![3, 1];
        body.extend([0; 32]);
        body.extend([0, 0, 2, 0, 0x2f, 1, 0]);
        assert_eq!(sniff(&record(&handshake(&body))), tls(None, false));
    }

    #[test]
    fn extension_lengths_must_add_up() {
        let real = hex(OPENSSL_PKG_TEST);
        // The extension block's length field is at a fixed offset here:
        // record 5, handshake 4, version 2, random 32, session id 1+32,
        // 62 bytes of suites after their length, compression 1+1.
        let at = 5 + 4 + 2 + 32 + 33 + 2 + 62 + 2;
        assert_eq!(be(&real, at, 2), Some(0xaa));
        for delta in [-1i32, 1, -4, 4] {
            let mut buf = real.clone();
            let len = u16::try_from(0xaa + delta).unwrap();
            buf[at..at + 2].copy_from_slice(&len.to_be_bytes());
            assert_eq!(sniff(&buf), Sniff::Bad(MALFORMED_HELLO), "{delta}");
        }
        // The server_name extension's own length, 0x0d, one byte short.
        let mut buf = real.clone();
        assert_eq!(buf[at + 5], 0x0d);
        buf[at + 5] = 0x0c;
        assert_eq!(sniff(&buf), Sniff::Bad(MALFORMED_HELLO));
    }

    #[test]
    fn a_client_hello_over_two_records_is_refused() {
        let real = hex(OPENSSL_PKG_TEST);
        let msg = &real[RECORD_HEADER..];
        for split in [1, 3, 4, 40, msg.len() - 1] {
            let mut buf = record(&msg[..split]);
            buf.extend(record(&msg[split..]));
            let whole = sniff(&buf);
            assert_eq!(whole, Sniff::Bad(FRAGMENTED), "split at {split}");
            for n in 0..buf.len() {
                let v = sniff(&buf[..n]);
                assert!(v == Sniff::NeedMore || v == whole, "{split}/{n}: {v:?}");
            }
        }
    }

    #[test]
    fn odd_records_are_refused_early() {
        let bad = Sniff::Bad(MALFORMED_RECORD);
        assert_eq!(sniff(&[0x16]), Sniff::NeedMore);
        assert_eq!(sniff(&[0x16, 2]), bad);
        assert_eq!(sniff(&[0x16, 3, 5]), bad);
        assert_eq!(sniff(&[0x16, 3, 1, 0]), Sniff::NeedMore);
        assert_eq!(sniff(&[0x16, 3, 1, 0, 0]), bad, "empty record");
        assert_eq!(sniff(&[0x16, 3, 1, 0x40, 1]), bad, "longer than 2^14");
        assert_eq!(
            sniff(&[0x16, 3, 1, 0x40, 0]),
            Sniff::NeedMore,
            "2^14 exactly"
        );
        assert_eq!(
            sniff(&[0x16, 3, 1, 0, 50, 2]),
            Sniff::Bad("TLS handshake that does not start with a ClientHello")
        );
        assert_eq!(
            sniff(&[0x16, 3, 1, 0, 50, 1, 0, 0, 47]),
            Sniff::Bad(FRAGMENTED)
        );
        assert_eq!(
            sniff(&[0x16, 3, 1, 0, 50, 1, 0, 0, 45]),
            Sniff::Bad("data after the TLS ClientHello in its record")
        );
        assert_eq!(sniff(&[0x16, 3, 1, 0, 2, 1, 0]), Sniff::Bad(FRAGMENTED));
        assert_eq!(
            sniff(&[0x16, 3, 1, 0, 4, 1, 0, 0, 0]),
            Sniff::Bad(MALFORMED_HELLO)
        );
    }

    #[test]
    fn a_maximal_record_fits_in_max_sniff() {
        let padding = vec![0; MAX_RECORD - 200];
        let mut buf = hello(&[(SERVER_NAME, &sni("pkg.test")), (21, &padding)]);
        let short = MAX_RECORD + RECORD_HEADER - buf.len();
        buf = hello(&[
            (SERVER_NAME, &sni("pkg.test")),
            (21, &vec![0; padding.len() + short]),
        ]);
        assert_eq!(buf.len(), MAX_SNIFF);
        assert_eq!(sniff(&buf), tls(Some("pkg.test"), false));
    }

    #[test]
    fn mutated_client_hellos_never_panic_nor_give_a_bad_name() {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for capture in [OPENSSL_PKG_TEST, PYTHON_PYPI, OPENSSL_NO_SNI] {
            let real = hex(capture);
            for _ in 0..3000 {
                let mut buf = real.clone();
                for _ in 0..1 + xorshift(&mut state) % 4 {
                    // Byte 0 stays: it alone sends buffers to the TLS parser.
                    let at = 1 + (xorshift(&mut state) % (buf.len() as u64 - 1)) as usize;
                    buf[at] = xorshift(&mut state) as u8;
                }
                let cut = (xorshift(&mut state) % (buf.len() as u64 + 1)) as usize;
                for part in [&buf[..], &buf[..cut]] {
                    match sniff(part) {
                        Sniff::Tls {
                            sni: Some(name), ..
                        } => {
                            assert_eq!(normalize(&name).as_ref(), Some(&name));
                        }
                        Sniff::Http { .. } | Sniff::Other => panic!("{part:?}"),
                        _ => {}
                    }
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_nor_loop() {
        let mut state = 0x2545_f491_4f6c_dd1d;
        for round in 0..20_000 {
            let len = (xorshift(&mut state) % 700) as usize;
            let noise = (0..len).map(|_| xorshift(&mut state) as u8);
            // Steer most towards one of the parsers.
            let start: &[u8] = match round % 3 {
                0 => &[HANDSHAKE_RECORD, 3, 1],
                1 => b"GET / HTTP/1.1\r\nHost: ",
                _ => b"",
            };
            let buf: Vec<u8> = start.iter().copied().chain(noise).collect();
            let _ = sniff(&buf);
        }
    }

    #[test]
    fn http_requests_give_their_host() {
        let cases: &[(&str, Option<&str>)] = &[
            ("GET / HTTP/1.1\r\nHost: pypi.org\r\n\r\n", Some("pypi.org")),
            (
                "HEAD /x HTTP/1.1\r\nhost: PyPI.Org.\r\n\r\n",
                Some("pypi.org"),
            ),
            (
                "POST / HTTP/1.1\r\nHOST:pypi.org:8080\r\n\r\n",
                Some("pypi.org"),
            ),
            (
                "PUT / HTTP/1.1\r\nHost: \t pypi.org \r\nA: b\r\n\r\n",
                Some("pypi.org"),
            ),
            (
                "PROPFIND / HTTP/1.1\r\nHost: dav.test\r\n\r\n",
                Some("dav.test"),
            ),
            (
                "OPTIONS * HTTP/1.1\r\nHost: pypi.org\r\n\r\n",
                Some("pypi.org"),
            ),
            (
                "\r\n\r\nGET / HTTP/1.1\r\nHost: pypi.org\r\n\r\n",
                Some("pypi.org"),
            ),
            ("GET / HTTP/1.1\nHost: pypi.org\n\n", Some("pypi.org")),
            ("GET / HTTP/1.0\r\n\r\n", None),
            ("GET / HTTP/1.1\r\nHost:\r\n\r\n", None),
            ("GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n", None),
            ("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", None),
            ("GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n", None),
        ];
        for (req, host) in cases {
            assert_eq!(sniff(req.as_bytes()), http(*host), "{req:?}");
        }
        // A body or a next request after the head does not matter.
        let req = b"POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabcGET";
        assert_eq!(sniff(req), http(Some("a.test")));
    }

    #[test]
    fn absolute_targets_must_name_the_host_header_s_host() {
        let ok: &[(&str, Option<&str>)] = &[
            (
                "GET http://pypi.org/simple HTTP/1.1\r\nHost: pypi.org\r\n\r\n",
                Some("pypi.org"),
            ),
            (
                "GET HTTP://PyPI.org:80?q HTTP/1.1\r\nHost: pypi.org:80\r\n\r\n",
                Some("pypi.org"),
            ),
            (
                "GET https://pypi.org#f HTTP/1.1\r\nHost: PYPI.ORG\r\n\r\n",
                Some("pypi.org"),
            ),
            ("GET http://pypi.org/ HTTP/1.0\r\n\r\n", Some("pypi.org")),
            (
                "GET http://10.0.0.1/ HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n",
                None,
            ),
        ];
        for (req, host) in ok {
            assert_eq!(sniff(req.as_bytes()), http(*host), "{req:?}");
        }
        let other = Sniff::Bad("request target names another host");
        let malformed = Sniff::Bad("malformed request target");
        let bad: &[(&str, &Sniff)] = &[
            (
                "GET http://evil.test/ HTTP/1.1\r\nHost: pypi.org\r\n\r\n",
                &other,
            ),
            (
                "GET http://pypi.org/ HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n",
                &other,
            ),
            ("GET http://pypi.org/ HTTP/1.1\r\nHost:\r\n\r\n", &other),
            (
                "GET http://10.0.0.1/ HTTP/1.1\r\nHost: pypi.org\r\n\r\n",
                &other,
            ),
            (
                "GET http://pypi.org@evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n",
                &malformed,
            ),
            (
                "GET ftp://pypi.org/ HTTP/1.1\r\nHost: pypi.org\r\n\r\n",
                &malformed,
            ),
            (
                "GET pypi.org:80 HTTP/1.1\r\nHost: pypi.org\r\n\r\n",
                &malformed,
            ),
            (
                "GET http:///x HTTP/1.1\r\nHost: pypi.org\r\n\r\n",
                &malformed,
            ),
            (
                "GET http://pypi..org/ HTTP/1.1\r\nHost: pypi.org\r\n\r\n",
                &malformed,
            ),
        ];
        for (req, want) in bad {
            assert_eq!(&sniff(req.as_bytes()), *want, "{req:?}");
        }
    }

    #[test]
    fn ambiguous_or_malformed_requests_are_refused() {
        let cases: &[(&str, &str)] = &[
            (
                "GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n",
                "two Host headers",
            ),
            (
                "GET / HTTP/1.1\r\nHost: a.test\r\nhost: b.test\r\n\r\n",
                "two Host headers",
            ),
            (
                "CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n",
                "CONNECT is not allowed",
            ),
            (
                "GET / HTTP/1.1\r\nHost: a.test, b.test\r\n\r\n",
                "Host header is not a host name",
            ),
            (
                "GET / HTTP/1.1\r\nHost: a.test:https\r\n\r\n",
                "Host header is not a host name",
            ),
            (
                "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
                "Host header is not a host name",
            ),
            (
                "GET / HTTP/1.1\r\nHost: [a.test]\r\n\r\n",
                "Host header is not a host name",
            ),
            (
                "GET / HTTP/1.1\r\nHost: 127.1\r\n\r\n",
                "Host header is not a host name",
            ),
            (
                "GET / HTTP/1.1\r\nHost: bücher.de\r\n\r\n",
                "Host header is not a host name",
            ),
            (
                "GET / HTTP/1.1\r\nHost : a.test\r\n\r\n",
                "malformed HTTP request",
            ),
            (
                "GET / HTTP/1.1\r\n Host: a.test\r\n\r\n",
                "malformed HTTP request",
            ),
            (
                "GET / HTTP/2.0\r\nHost: a.test\r\n\r\n",
                "malformed HTTP request",
            ),
            ("SET k v\r\n", "malformed HTTP request"),
            (
                "GET / HTTP/1.1\r\nHost: a.test\rX: y\r\n\r\n",
                "malformed HTTP request",
            ),
            (
                "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                "HTTP/2 without TLS is not supported",
            ),
        ];
        for (req, why) in cases {
            assert_eq!(sniff(req.as_bytes()), Sniff::Bad(why), "{req:?}");
        }
    }

    #[test]
    fn header_limits() {
        let mut req = String::from("GET / HTTP/1.1\r\nHost: a.test\r\n");
        for i in 0..63 {
            req += &format!("X-{i}: y\r\n");
        }
        assert_eq!(sniff(format!("{req}\r\n").as_bytes()), http(Some("a.test")));
        req += "X-64: y\r\n\r\n";
        assert_eq!(
            sniff(req.as_bytes()),
            Sniff::Bad("more than 64 request headers")
        );

        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_SNIFF - 1, b'a');
        assert_eq!(sniff(&long), Sniff::NeedMore);
        long.push(b'a');
        assert_eq!(sniff(&long), Sniff::Bad("request headers too long"));
    }

    #[test]
    fn partial_requests_need_more() {
        let req = b"GET /simple/ HTTP/1.1\r\nHost: pypi.org\r\nAccept: */*\r\n\r\n";
        for n in 0..req.len() {
            assert_eq!(sniff(&req[..n]), Sniff::NeedMore, "{n} bytes");
        }
        assert_eq!(sniff(req), http(Some("pypi.org")));
        assert_eq!(sniff(b"\r\n"), Sniff::NeedMore);
        assert_eq!(sniff(&[b'\n'; MAX_SNIFF]), Sniff::Other);
    }

    #[test]
    fn other_protocols_are_told_apart_early() {
        assert_eq!(sniff(b""), Sniff::NeedMore);
        assert_eq!(sniff(b"SSH-"), Sniff::NeedMore, "could still be a method");
        assert_eq!(sniff(b"SSH-2"), Sniff::Other);
        assert_eq!(sniff(b"SSH-2.0-OpenSSH_9.2p1\r\n"), Sniff::Other);
        assert_eq!(
            sniff(b"0032git-upload-pack /x\0host=a.test\0"),
            Sniff::Other
        );
        assert_eq!(
            sniff(b"get / HTTP/1.1\r\n\r\n"),
            Sniff::Other,
            "methods are uppercase"
        );
        assert_eq!(sniff(b"*1\r\n$4\r\nPING\r\n"), Sniff::Other);
        assert_eq!(sniff(b"PING\r\n"), Sniff::Other);
        assert_eq!(sniff(b" GET / HTTP/1.1\r\n"), Sniff::Other);
        assert_eq!(sniff(b"-GET"), Sniff::Other);
        assert_eq!(sniff(&[0x80, 0x2e, 1, 3, 1]), Sniff::Other, "SSLv2 hello");
        assert_eq!(sniff(&[0, 0, 0, 0]), Sniff::Other);
        let long_token = [b'A'; MAX_METHOD];
        assert_eq!(sniff(&long_token), Sniff::NeedMore);
        assert_eq!(sniff(&[b'A'; MAX_METHOD + 1]), Sniff::Other);
    }
}
