//! The stub resolver's wire format: which question a client asked, the
//! replies the stub makes itself (REFUSED, or NOERROR with no records),
//! and what an upstream answer says about the name asked: the addresses
//! at the end of its CNAME chain, which the gate then admits for it.
//!
//! The header and the question are read here, not by simple-dns: it
//! refuses questions of the types it doesn't know (TLSA, SSHFP), which the
//! stub must still answer, and it would not keep the question's bytes for
//! the echo. The records of an answer are read by simple-dns.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{CLASS, Packet, ResourceRecord};

use super::names::normalize;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SVCB: u16 = 64;
pub const TYPE_HTTPS: u16 = 65;

pub const CLASS_IN: u16 = 1;
const HEADER: usize = 12;
/// Header flag bits (RFC 1035 §4.1.1).
const QR: u16 = 0x8000;
const OPCODE: u16 = 0x7800;
const RD: u16 = 0x0100;
const RA: u16 = 0x0080;
const NOERROR: u16 = 0;
const REFUSED: u16 = 5;
/// A name has at most 127 labels, so no sensible name needs more jumps.
const MAX_POINTERS: usize = 127;
/// The longest name on the wire (RFC 1035 §3.1).
const MAX_NAME: usize = 255;
/// The smallest record: a root owner name and 10 bytes of fields.
const MIN_RECORD: usize = 11;
/// The most CNAMEs followed from the name asked.
const MAX_CHAIN: usize = 16;

/// One question, from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    /// Normalized (names::normalize).
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// What an upstream answer says about the name asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub rcode: u8,
    /// The addresses at the end of the CNAME chain, each with the least
    /// TTL along the way.
    pub addrs: Vec<(IpAddr, u32)>,
    /// The name asked, then each CNAME target, normalized.
    pub chain: Vec<String>,
}

/// A query the stub can decide on: QR=0, opcode QUERY, exactly one
/// question, class IN, a host name; else Err(what was expected).
pub fn parse_query(buf: &[u8]) -> Result<Query, &'static str> {
    let h = header(buf).ok_or("expected a DNS message, got fewer than 12 bytes")?;
    if h.flags & QR != 0 {
        return Err("expected a query, got a response");
    }
    if h.flags & OPCODE != 0 {
        return Err("expected a standard query (opcode QUERY)");
    }
    let q = question(buf, &h).ok_or("expected exactly one well-formed question")?;
    if q.qclass != CLASS_IN {
        return Err("expected a question of class IN");
    }
    let name = host_name(q.labels.iter().copied()).ok_or("expected a host name in the question")?;
    Ok(Query {
        id: h.id,
        name,
        qtype: q.qtype,
        qclass: q.qclass,
    })
}

/// A reply to `query` with rcode REFUSED and no records. None when the
/// query's header can't be read, or it is a response itself: then the
/// stub sends nothing.
pub fn refused(query: &[u8]) -> Option<Vec<u8>> {
    reply(query, REFUSED)
}

/// The same with NOERROR: what the stub answers for record types it does
/// not relay, such as HTTPS/SVCB, so that clients don't learn ECH keys.
pub fn no_data(query: &[u8]) -> Option<Vec<u8>> {
    reply(query, NOERROR)
}

/// The gate's own query for `name` (already normalized) of type `qtype`,
/// recursion desired; None when the name can't be put in a question.
pub fn query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER + MAX_NAME + 4);
    out.extend(id.to_be_bytes());
    out.extend(RD.to_be_bytes());
    out.extend([0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|&l| (1..=63).contains(&l))?;
        out.push(len);
        out.extend(label.as_bytes());
    }
    out.push(0);
    if out.len() - HEADER > MAX_NAME {
        return None;
    }
    out.extend(qtype.to_be_bytes());
    out.extend(CLASS_IN.to_be_bytes());
    Some(out)
}

/// A reply with no records: the query's id, opcode and RD, RA set, and its
/// question echoed with the client's case (resolvers that randomize case,
/// "DNS 0x20", check it), when it has exactly one that can be read.
fn reply(query: &[u8], rcode: u16) -> Option<Vec<u8>> {
    let h = header(query)?;
    if h.flags & QR != 0 {
        // Answering a response could start two resolvers off on an
        // endless exchange.
        return None;
    }
    let q = question(query, &h);
    let mut out = Vec::with_capacity(HEADER + MAX_NAME + 4);
    out.extend(h.id.to_be_bytes());
    out.extend((QR | (h.flags & (OPCODE | RD)) | RA | rcode).to_be_bytes());
    out.extend(u16::from(q.is_some()).to_be_bytes());
    out.extend([0; 6]); // no records
    if let Some(q) = q {
        for label in &q.labels {
            out.push(u8::try_from(label.len()).ok()?);
            out.extend(*label);
        }
        out.push(0);
        out.extend(q.qtype.to_be_bytes());
        out.extend(q.qclass.to_be_bytes());
    }
    Some(out)
}

/// What an upstream answer to `q` says. Err(what was expected) when it is
/// not an answer to q: a query, another id, another question, malformed.
/// Only the answer section counts; records that are not on the chain from
/// q.name are ignored. The chain stops at a loop, a name with two CNAMEs, a
/// target that is not a host name or after 16 CNAMEs; it then has no
/// addresses. simple-dns, which reads the records, refuses a question of a
/// type it does not know (TLSA, SSHFP): answers to those are Err as well.
pub fn check_response(resp: &[u8], q: &Query) -> Result<Answer, &'static str> {
    let h = header(resp).ok_or("expected a DNS message, got fewer than 12 bytes")?;
    if h.flags & QR == 0 {
        return Err("expected a response, got a query");
    }
    if h.id != q.id || h.flags & OPCODE != 0 {
        return Err("expected a response to the query sent, got another id or opcode");
    }
    let asked = question(resp, &h).ok_or("expected exactly one well-formed question")?;
    let same = asked.qtype == q.qtype
        && asked.qclass == q.qclass
        && host_name(asked.labels.iter().copied()).as_ref() == Some(&q.name);
    if !same {
        return Err("expected a response to the question asked, got another question");
    }
    // Each count sizes an allocation in the parser: a count the message
    // can't hold is refused first.
    let count = usize::from(h.ancount) + usize::from(h.nscount) + usize::from(h.arcount);
    if count * MIN_RECORD > resp.len() {
        return Err("expected a well-formed response, got record counts larger than it");
    }
    let packet =
        Packet::parse(resp).map_err(|_| "expected a well-formed response, got one that isn't")?;
    let rcode = h.flags.to_be_bytes()[1] & 0x0f;
    Ok(follow(&q.name, &records(&packet.answers), rcode))
}

/// An answer record the chain can use, its names normalized.
struct Record {
    owner: String,
    ttl: u32,
    data: Data,
}

enum Data {
    /// None: a target that is not a host name.
    Cname(Option<String>),
    Addr(IpAddr),
}

fn records(answers: &[ResourceRecord]) -> Vec<Record> {
    answers
        .iter()
        // The cache-flush bit is mDNS's; in unicast DNS it makes another
        // class.
        .filter(|rr| rr.class == CLASS::IN && !rr.cache_flush)
        .filter_map(|rr| {
            let data = match &rr.rdata {
                RData::CNAME(target) => Data::Cname(host_name(target.0.as_bytes())),
                RData::A(a) => Data::Addr(IpAddr::V4(Ipv4Addr::from(a.address))),
                RData::AAAA(a) => Data::Addr(IpAddr::V6(Ipv6Addr::from(a.address))),
                _ => return None,
            };
            Some(Record {
                owner: host_name(rr.name.as_bytes())?,
                ttl: rr.ttl,
                data,
            })
        })
        .collect()
}

/// The CNAME chain from `name` through `records`, and the addresses at
/// its end. A name with a CNAME has no other data (RFC 1034 §3.6.2), so a
/// chain that stops short of an end has no addresses.
fn follow(name: &str, records: &[Record], rcode: u8) -> Answer {
    let mut chain = vec![name.to_string()];
    let mut chain_ttl = u32::MAX;
    loop {
        let here = &chain[chain.len() - 1];
        let mut cnames =
            records
                .iter()
                .filter(|r| r.owner == *here)
                .filter_map(|r| match &r.data {
                    Data::Cname(target) => Some((target, r.ttl)),
                    Data::Addr(_) => None,
                });
        let (target, ttl) = match (cnames.next(), cnames.next()) {
            (None, _) => break,
            (Some((Some(target), ttl)), None)
                if chain.len() <= MAX_CHAIN && !chain.contains(target) =>
            {
                (target, ttl)
            }
            // Two CNAMEs, a loop, too long, or a target that is no name.
            _ => {
                return Answer {
                    rcode,
                    addrs: Vec::new(),
                    chain,
                };
            }
        };
        chain_ttl = chain_ttl.min(ttl);
        chain.push(target.clone());
    }
    let end = &chain[chain.len() - 1];
    let addrs = records
        .iter()
        .filter(|r| r.owner == *end)
        .filter_map(|r| match r.data {
            Data::Addr(ip) => Some((ip, r.ttl.min(chain_ttl))),
            Data::Cname(_) => None,
        })
        .collect();
    Answer {
        rcode,
        addrs,
        chain,
    }
}

/// The fixed header (RFC 1035 §4.1.1).
struct Header {
    id: u16,
    flags: u16,
    qdcount: u16,
    ancount: u16,
    nscount: u16,
    arcount: u16,
}

fn header(buf: &[u8]) -> Option<Header> {
    let field = |i: usize| Some(u16::from_be_bytes([*buf.get(2 * i)?, *buf.get(2 * i + 1)?]));
    Some(Header {
        id: field(0)?,
        flags: field(1)?,
        qdcount: field(2)?,
        ancount: field(3)?,
        nscount: field(4)?,
        arcount: field(5)?,
    })
}

/// The message's question, as on the wire.
struct Question<'a> {
    labels: Vec<&'a [u8]>,
    qtype: u16,
    qclass: u16,
}

/// The question after the header, when the header counts exactly one.
fn question<'a>(buf: &'a [u8], h: &Header) -> Option<Question<'a>> {
    if h.qdcount != 1 {
        return None;
    }
    let (labels, end) = read_name(buf, HEADER)?;
    let field = |at: usize| Some(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]));
    Some(Question {
        labels,
        qtype: field(end)?,
        qclass: field(end + 2)?,
    })
}

/// The labels of the name at `at` and the offset just after it, following
/// compression pointers (RFC 1035 §4.1.4). Pointers must point back, as to
/// "a prior occurrence"; the name's length and the number of jumps are
/// bounded, so a pointer loop ends in None.
fn read_name(buf: &[u8], mut at: usize) -> Option<(Vec<&[u8]>, usize)> {
    let mut labels = Vec::new();
    let mut len = 1; // the root label
    let mut end = None;
    let mut jumps = 0;
    loop {
        let b = *buf.get(at)?;
        match b {
            0 => return Some((labels, end.unwrap_or(at + 1))),
            1..=63 => {
                let n = usize::from(b);
                len += 1 + n;
                if len > MAX_NAME {
                    return None;
                }
                labels.push(buf.get(at + 1..at + 1 + n)?);
                at += 1 + n;
            }
            0xc0..=0xff => {
                let to = (usize::from(b & 0x3f) << 8) | usize::from(*buf.get(at + 1)?);
                jumps += 1;
                if to >= at || jumps > MAX_POINTERS {
                    return None;
                }
                end.get_or_insert(at + 2);
                at = to;
            }
            // 0x40 and 0x80 start label types that were never deployed.
            _ => return None,
        }
    }
}

/// Wire labels as a normalized host name. A wire label may hold any
/// byte, a dot included; only host-name characters are let through, so
/// that one label "a.b" can't pass for two.
fn host_name<'a>(labels: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    let mut text = String::new();
    for label in labels {
        let label = std::str::from_utf8(label).ok()?;
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        if !text.is_empty() {
            text.push('.');
        }
        text.push_str(label);
    }
    normalize(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gates_own_queries_read_back() {
        let q = super::query(7, "pkg.test", TYPE_AAAA).unwrap();
        assert_eq!(
            parse_query(&q),
            Ok(Query {
                id: 7,
                name: "pkg.test".into(),
                qtype: TYPE_AAAA,
                qclass: 1
            })
        );
        assert_eq!(super::query(1, "a..b", TYPE_A), None);
        assert_eq!(super::query(1, &"x".repeat(64), TYPE_A), None);
    }
    use simple_dns::rdata::{A, AAAA, CNAME};
    use simple_dns::{Label, Name, PacketFlag, QCLASS, QTYPE, Question as Q, RCODE, TYPE};

    fn query_packet(id: u16, name: &'static str, qtype: u16) -> Vec<u8> {
        let mut p = Packet::new_query(id);
        p.set_flags(PacketFlag::RECURSION_DESIRED);
        p.questions.push(Q::new(
            Name::new_unchecked(name),
            QTYPE::TYPE(TYPE::from(qtype)),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    fn query(id: u16, name: &str, qtype: u16) -> Query {
        Query {
            id,
            name: name.into(),
            qtype,
            qclass: CLASS_IN,
        }
    }

    fn a(name: &'static str, ttl: u32, ip: [u8; 4]) -> ResourceRecord<'static> {
        let address = u32::from(Ipv4Addr::from(ip));
        let name = Name::new_unchecked(name);
        ResourceRecord::new(name, CLASS::IN, ttl, RData::A(A { address }))
    }

    fn aaaa(name: &'static str, ttl: u32, ip: &str) -> ResourceRecord<'static> {
        let address = u128::from(ip.parse::<Ipv6Addr>().unwrap());
        let name = Name::new_unchecked(name);
        ResourceRecord::new(name, CLASS::IN, ttl, RData::AAAA(AAAA { address }))
    }

    fn cname(name: &'static str, ttl: u32, target: &'static str) -> ResourceRecord<'static> {
        let target = CNAME(Name::new_unchecked(target));
        ResourceRecord::new(
            Name::new_unchecked(name),
            CLASS::IN,
            ttl,
            RData::CNAME(target),
        )
    }

    /// An upstream's answer (names compressed, as servers send them).
    fn response(
        id: u16,
        name: &'static str,
        qtype: u16,
        answers: Vec<ResourceRecord<'static>>,
    ) -> Vec<u8> {
        let p = response_packet(id, name, qtype, answers);
        p.build_bytes_vec_compressed().unwrap()
    }

    fn response_packet(
        id: u16,
        name: &'static str,
        qtype: u16,
        answers: Vec<ResourceRecord<'static>>,
    ) -> Packet<'static> {
        let mut p = Packet::new_reply(id);
        p.set_flags(PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE);
        p.questions.push(Q::new(
            Name::new_unchecked(name),
            QTYPE::TYPE(TYPE::from(qtype)),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.answers = answers;
        p
    }

    fn v4(ip: [u8; 4], ttl: u32) -> (IpAddr, u32) {
        (IpAddr::from(ip), ttl)
    }

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn queries_are_read_whatever_their_type() {
        let buf = query_packet(0x1234, "PyPI.org.", TYPE_A);
        assert_eq!(parse_query(&buf), Ok(query(0x1234, "pypi.org", TYPE_A)));
        for qtype in [TYPE_AAAA, 5, TYPE_SVCB, TYPE_HTTPS, 52, 255, 65280] {
            let buf = query_packet(7, "pkg.test", qtype);
            assert_eq!(
                parse_query(&buf),
                Ok(query(7, "pkg.test", qtype)),
                "{qtype}"
            );
        }
    }

    #[test]
    fn queries_with_edns_are_read() {
        let mut buf = query_packet(9, "pkg.test", TYPE_A);
        buf[11] = 1; // one additional record: OPT, 1232 bytes, DO clear
        buf.extend([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse_query(&buf), Ok(query(9, "pkg.test", TYPE_A)));
    }

    #[test]
    fn queries_the_stub_cannot_decide_on_say_why() {
        let good = query_packet(1, "pkg.test", TYPE_A);
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            b
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "fewer than 12 bytes"),
            (good[..11].to_vec(), "fewer than 12 bytes"),
            (with(&|b| b[2] |= 0x80), "got a response"),
            (with(&|b| b[2] |= 4 << 3), "opcode QUERY"), // NOTIFY
            (with(&|b| b[5] = 0), "exactly one"),
            (with(&|b| b[5] = 2), "exactly one"),
            (
                with(&|b| b.truncate(b.len() - 1)),
                "exactly one well-formed",
            ),
            (with(&|b| *b.last_mut().unwrap() = 3), "class IN"), // CH
            (
                with(&|b| {
                    let n = b.len();
                    b[n - 2] = 0x80;
                }),
                "class IN",
            ), // mDNS's QU bit
            (with(&|b| b[13] = b'.'), "host name"),              // "pkg" -> "p.g"
            (with(&|b| b[13] = 0xc3), "host name"),
            (with(&|b| b[12] = 0x40), "exactly one well-formed"), // extended label
        ];
        for (buf, why) in cases {
            let err = parse_query(&buf).unwrap_err();
            assert!(err.starts_with("expected"), "{err}");
            assert!(err.contains(why), "{buf:?}: {err}");
        }
        // The root, and a label holding a dot.
        let mut root = good[..12].to_vec();
        root.extend([0, 0, 2, 0, 1]);
        assert!(parse_query(&root).unwrap_err().contains("host name"));
        let mut p = Packet::new_query(1);
        let labels = [
            Label::new_unchecked(&b"a.b"[..]),
            Label::new_unchecked(&b"test"[..]),
        ];
        p.questions.push(Q::new(
            Name::new_with_labels(&labels),
            TYPE::A.into(),
            CLASS::IN.into(),
            false,
        ));
        let dotted = p.build_bytes_vec().unwrap();
        assert!(parse_query(&dotted).unwrap_err().contains("host name"));
    }

    #[test]
    fn refused_echoes_the_query() {
        let query = query_packet(0xbeef, "PyPI.Org", TYPE_HTTPS);
        let reply = refused(&query).unwrap();
        assert_eq!(reply[..2], [0xbe, 0xef]);
        assert_eq!(
            reply[12..],
            query[12..],
            "question byte for byte, case kept"
        );
        let p = Packet::parse(&reply).unwrap();
        assert!(p.has_flags(
            PacketFlag::RESPONSE | PacketFlag::RECURSION_DESIRED | PacketFlag::RECURSION_AVAILABLE
        ));
        assert!(!p.has_flags(PacketFlag::AUTHORITATIVE_ANSWER));
        assert_eq!(p.rcode(), RCODE::Refused);
        assert_eq!(p.questions.len(), 1);
        assert!(p.answers.is_empty() && p.name_servers.is_empty());
        assert!(p.additional_records.is_empty());

        let reply = no_data(&query).unwrap();
        assert_eq!(reply[12..], query[12..]);
        assert_eq!(Packet::parse(&reply).unwrap().rcode(), RCODE::NoError);
    }

    #[test]
    fn replies_keep_rd_and_opcode_and_drop_edns() {
        let mut query = query_packet(5, "pkg.test", 52); // TLSA
        query[2] &= !0x01; // RD clear
        let plain = query.clone();
        query[11] = 1;
        query.extend([0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]); // OPT, DO set
        let reply = no_data(&query).unwrap();
        assert_eq!(reply[2..4], [0x80, 0x80], "QR and RA, no RD");
        assert_eq!(reply[4..12], [0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(reply[12..], plain[12..]);

        query[2] |= 4 << 3; // NOTIFY
        let reply = refused(&query).unwrap();
        assert_eq!(reply[2..4], [0x80 | (4 << 3), 0x80 | 5]);
    }

    #[test]
    fn replies_to_what_has_no_readable_question_have_none() {
        let mut query = query_packet(5, "pkg.test", TYPE_A);
        query[5] = 2;
        let reply = refused(&query).unwrap();
        assert_eq!(reply, [0, 5, 0x81, 0x85, 0, 0, 0, 0, 0, 0, 0, 0]);
        let reply = refused(&query[..12]).unwrap();
        assert_eq!(reply[4..6], [0, 0]);
        assert_eq!(refused(&query[..11]), None);
        assert_eq!(no_data(&[]), None);
        let mut response = query_packet(5, "pkg.test", TYPE_A);
        response[2] |= 0x80;
        assert_eq!(refused(&response), None, "no reply to a reply");
        assert_eq!(no_data(&response), None);
    }

    #[test]
    fn an_answer_gives_its_addresses() {
        let q = query(42, "pkg.test", TYPE_A);
        let resp = response(
            42,
            "pkg.test",
            TYPE_A,
            vec![
                a("pkg.test", 300, [192, 0, 2, 1]),
                a("pkg.test", 60, [192, 0, 2, 2]),
            ],
        );
        let want = Answer {
            rcode: 0,
            addrs: vec![v4([192, 0, 2, 1], 300), v4([192, 0, 2, 2], 60)],
            chain: vec!["pkg.test".into()],
        };
        assert_eq!(check_response(&resp, &q), Ok(want));

        let q = query(43, "pkg.test", TYPE_AAAA);
        let resp = response(
            43,
            "pkg.test",
            TYPE_AAAA,
            vec![aaaa("pkg.test", 30, "2001:db8::1")],
        );
        let addrs = check_response(&resp, &q).unwrap().addrs;
        assert_eq!(addrs, [("2001:db8::1".parse().unwrap(), 30)]);
    }

    #[test]
    fn the_cname_chain_is_followed_with_the_least_ttl() {
        let q = query(1, "pypi.org", TYPE_A);
        let resp = response(
            1,
            "PyPI.org",
            TYPE_A,
            vec![
                cname("pypi.org", 3600, "Dualstack.Python.Map.Fastly.NET."),
                cname("dualstack.python.map.fastly.net", 30, "z.fastly.net"),
                a("z.fastly.net", 300, [151, 101, 0, 223]),
                a("z.fastly.net", 10, [151, 101, 64, 223]),
            ],
        );
        let answer = check_response(&resp, &q).unwrap();
        assert_eq!(
            answer.chain,
            [
                "pypi.org",
                "dualstack.python.map.fastly.net",
                "z.fastly.net"
            ]
        );
        assert_eq!(
            answer.addrs,
            [v4([151, 101, 0, 223], 30), v4([151, 101, 64, 223], 10)]
        );
    }

    #[test]
    fn records_off_the_chain_are_ignored() {
        let q = query(1, "pkg.test", TYPE_A);
        let mut p = response_packet(
            1,
            "pkg.test",
            TYPE_A,
            vec![
                a("evil.test", 300, [6, 6, 6, 6]),
                cname("other.test", 300, "evil.test"),
                cname("pkg.test", 300, "cdn.test"),
                // A name with a CNAME has no other data: not an end.
                a("pkg.test", 300, [6, 6, 6, 7]),
                a("cdn.test", 300, [192, 0, 2, 1]),
                a("cdn.test.evil.test", 300, [6, 6, 6, 8]),
            ],
        );
        p.additional_records.push(a("cdn.test", 300, [6, 6, 6, 9]));
        p.name_servers.push(a("cdn.test", 300, [6, 6, 6, 10]));
        let mut chaos = a("cdn.test", 300, [6, 6, 6, 11]);
        chaos.class = CLASS::CH;
        p.answers.push(chaos);
        p.answers
            .push(a("cdn.test", 300, [6, 6, 6, 12]).with_cache_flush(true));
        let answer = check_response(&p.build_bytes_vec().unwrap(), &q).unwrap();
        assert_eq!(answer.chain, ["pkg.test", "cdn.test"]);
        assert_eq!(answer.addrs, [v4([192, 0, 2, 1], 300)]);
    }

    #[test]
    fn chains_that_do_not_end_have_no_addresses() {
        let q = query(1, "a.test", TYPE_A);
        let looped = response(
            1,
            "a.test",
            TYPE_A,
            vec![
                cname("a.test", 300, "b.test"),
                cname("b.test", 300, "a.test"),
                a("a.test", 300, [6, 6, 6, 6]),
                a("b.test", 300, [6, 6, 6, 6]),
            ],
        );
        let answer = check_response(&looped, &q).unwrap();
        assert_eq!(answer.chain, ["a.test", "b.test"]);
        assert!(answer.addrs.is_empty());

        let forked = response(
            1,
            "a.test",
            TYPE_A,
            vec![
                cname("a.test", 300, "b.test"),
                cname("a.test", 300, "c.test"),
                a("b.test", 300, [6, 6, 6, 6]),
            ],
        );
        let answer = check_response(&forked, &q).unwrap();
        assert_eq!(answer.chain, ["a.test"]);
        assert!(answer.addrs.is_empty());

        let mut p = Packet::new_reply(1);
        p.questions.push(Q::new(
            Name::new_unchecked("a.test"),
            TYPE::A.into(),
            CLASS::IN.into(),
            false,
        ));
        let labels = [Label::new_unchecked(&b"x y"[..])];
        p.answers.push(ResourceRecord::new(
            Name::new_unchecked("a.test"),
            CLASS::IN,
            300,
            RData::CNAME(CNAME(Name::new_with_labels(&labels))),
        ));
        let answer = check_response(&p.build_bytes_vec().unwrap(), &q).unwrap();
        assert_eq!(answer.chain, ["a.test"]);
        assert!(answer.addrs.is_empty());
    }

    #[test]
    fn chains_stop_after_16_cnames() {
        let names: Vec<&'static str> = (0..=17).map(|i| &*format!("c{i}.test").leak()).collect();
        let chain_to = |last: usize| {
            let mut records: Vec<_> = (0..last)
                .map(|i| cname(names[i], 300, names[i + 1]))
                .collect();
            records.push(a(names[last], 300, [192, 0, 2, 1]));
            response(1, "c0.test", TYPE_A, records)
        };
        let q = query(1, "c0.test", TYPE_A);
        let answer = check_response(&chain_to(16), &q).unwrap();
        assert_eq!(answer.chain.len(), 17);
        assert_eq!(answer.addrs, [v4([192, 0, 2, 1], 300)]);
        let answer = check_response(&chain_to(17), &q).unwrap();
        assert_eq!(answer.chain.len(), 17);
        assert!(answer.addrs.is_empty());
    }

    #[test]
    fn other_rcodes_pass_through() {
        let mut p = response_packet(3, "gone.test", TYPE_A, vec![]);
        *p.rcode_mut() = RCODE::NameError;
        let q = query(3, "gone.test", TYPE_A);
        let answer = check_response(&p.build_bytes_vec().unwrap(), &q).unwrap();
        assert_eq!((answer.rcode, answer.addrs.len()), (3, 0));
    }

    #[test]
    fn responses_to_something_else_are_refused() {
        let q = query(7, "pkg.test", TYPE_A);
        let records = || vec![a("pkg.test", 300, [192, 0, 2, 1])];
        let good = response(7, "pkg.test", TYPE_A, records());
        assert!(check_response(&good, &q).is_ok());
        let mixed_case = response(7, "pKg.TeSt", TYPE_A, records());
        assert!(check_response(&mixed_case, &q).is_ok(), "DNS 0x20");
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            b
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (response(8, "pkg.test", TYPE_A, records()), "another id"),
            (with(&|b| b[2] &= !0x80), "got a query"),
            (with(&|b| b[2] |= 5 << 3), "opcode"),
            (
                response(7, "pkg.test.evil", TYPE_A, records()),
                "another question",
            ),
            (
                response(7, "kg.test", TYPE_A, records()),
                "another question",
            ),
            (
                response(7, "pkg.test", TYPE_AAAA, records()),
                "another question",
            ),
            (with(&|b| b[5] = 0), "exactly one"),
            (with(&|b| b[5] = 2), "exactly one"),
            (with(&|b| b[7] = 2), "well-formed response"),
            (with(&|b| b[7] = 0xff), "counts larger"),
            (with(&|b| b[3] |= 0x40), "well-formed response"), // Z bit
            (query_packet(7, "pkg.test", TYPE_A), "got a query"),
            (good[..11].to_vec(), "fewer than 12 bytes"),
        ];
        for (buf, why) in cases {
            let err = check_response(&buf, &q).unwrap_err();
            assert!(err.starts_with("expected"), "{err}");
            assert!(err.contains(why), "{why}: {err}");
        }
        let chaos = Query {
            qclass: 3,
            ..q.clone()
        };
        assert!(check_response(&good, &chaos).is_err());
    }

    #[test]
    fn answers_to_types_simple_dns_does_not_know_are_refused() {
        let q = query(1, "pkg.test", 52); // TLSA
        let resp = response(1, "pkg.test", 52, vec![]);
        assert!(
            check_response(&resp, &q)
                .unwrap_err()
                .contains("well-formed")
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        let q = query(1, "pypi.org", TYPE_A);
        let resp = response(
            1,
            "pypi.org",
            TYPE_A,
            vec![
                cname("pypi.org", 3600, "dualstack.python.map.fastly.net"),
                a("dualstack.python.map.fastly.net", 30, [151, 101, 0, 223]),
            ],
        );
        assert!(check_response(&resp, &q).is_ok());
        for n in 0..resp.len() {
            assert!(check_response(&resp[..n], &q).is_err(), "{n} bytes");
        }
        let buf = query_packet(1, "pypi.org", TYPE_A);
        for n in 0..buf.len() {
            assert!(parse_query(&buf[..n]).is_err(), "{n} bytes");
            assert_eq!(refused(&buf[..n]).is_some(), n >= HEADER);
        }
    }

    #[test]
    fn compression_loops_end_in_an_error() {
        let q = query(7, "a.test", TYPE_A);
        // Header: id 7, QR RD RA, one question, one answer.
        let head = [0, 7, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        let question = [1, b'a', 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1];
        // The answer's owner, at offset 24: a pointer to itself; a label
        // and a pointer back to that label; a pointer forward.
        for owner in [vec![0xc0, 24], vec![1, b'x', 0xc0, 24], vec![0xc0, 25]] {
            let mut buf = [&head[..], &question].concat();
            buf.extend(owner);
            buf.extend([0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 192, 0, 2, 1]);
            assert!(check_response(&buf, &q).is_err(), "{buf:?}");
        }
        // The same in the question, read by this module.
        let mut query_head = head;
        query_head[2] = 0x01;
        query_head[7] = 0;
        for name in [vec![0xc0, 12], vec![1, b'x', 0xc0, 12], vec![0xc0, 14]] {
            let mut buf = query_head.to_vec();
            buf.extend(&name);
            buf.extend([0, 1, 0, 1]);
            assert!(parse_query(&buf).is_err(), "{buf:?}");
            assert_eq!(refused(&buf).unwrap()[4..6], [0, 0], "{buf:?}");
        }
    }

    #[test]
    fn a_compressed_question_is_echoed_whole() {
        // "pkg", then a pointer to the header's last byte, a zero: the
        // root. Odd but lawful; the echo must not point into the reply's
        // own header, which differs.
        let mut buf = vec![0, 9, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        buf.extend([3, b'p', b'k', b'g', 0xc0, 11, 0, 1, 0, 1]);
        assert_eq!(parse_query(&buf), Ok(query(9, "pkg", TYPE_A)));
        let reply = no_data(&buf).unwrap();
        assert_eq!(reply[12..], [3, b'p', b'k', b'g', 0, 0, 1, 0, 1]);
    }

    #[test]
    fn random_bytes_never_panic_nor_loop() {
        let mut state = 0x853c_49e6_748f_ea9b;
        let q = query(0x0102, "pkg.test", TYPE_A);
        let good = response(
            0x0102,
            "pkg.test",
            TYPE_A,
            vec![
                cname("pkg.test", 1, "cdn.test"),
                a("cdn.test", 1, [192, 0, 2, 1]),
            ],
        );
        for round in 0..20_000 {
            let buf: Vec<u8> = if round % 2 == 0 {
                let len = (xorshift(&mut state) % 300) as usize;
                let mut b: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
                // Many pass the header checks this way.
                if b.len() >= 6 {
                    b[..6].copy_from_slice(&[1, 2, 0x81, 0x80, 0, 1]);
                }
                b
            } else {
                let mut b = good.clone();
                for _ in 0..1 + xorshift(&mut state) % 4 {
                    let at = (xorshift(&mut state) % b.len() as u64) as usize;
                    b[at] = xorshift(&mut state) as u8;
                }
                b
            };
            let _ = check_response(&buf, &q);
            let _ = parse_query(&buf);
            let _ = refused(&buf);
            let _ = no_data(&buf);
        }
    }
}
