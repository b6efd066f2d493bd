//! Text from the sandbox made harmless for the user's terminal.
//!
//! File names in an overlay's upper layer, command lines in running
//! records, log output and the paths inside error messages are chosen by
//! whatever ran in the sandbox. Printed raw, an escape sequence in one of
//! them can retitle or rewrite the user's terminal, and `ESC [2K` plus a
//! carriage return can erase a line of `nook diff` before the user reads
//! it. Every printer in `commands` passes such text through one of the
//! functions here, at the moment it prints, never earlier: the logic keeps
//! the real names. (The one exception is the patch header `overlay`
//! writes, where a raw newline would forge a line of the patch.)
//!
//! The format, one form per kind of character, so each shown form has one
//! reading:
//! - a C0 control (U+0000..U+001F) or DEL (U+007F) becomes `\x` and two
//!   lowercase hex digits: ESC is `\x1b`, a newline `\x0a`;
//! - a C1 control (U+0080..U+009F), a character encoded in two bytes,
//!   becomes `\u{..}`: CSI is `\u{9b}`;
//! - a byte that is not part of valid UTF-8 (paths and logs are bytes)
//!   becomes `\x` and its two hex digits, always `\x80` or above, which no
//!   control's form is;
//! - in names ([`name`], [`path`]: paths, sandbox names, command-line
//!   arguments) a backslash is doubled, `\\`, so that the file `a\x1b` (six
//!   printable characters) shows as `a\\x1b` and the file `a` ESC as
//!   `a\x1b`: the shown name spells exactly one real name. In messages
//!   ([`line`]) and in output ([`Text`]: logs, patches) a backslash stays
//!   as it is: they are read, not turned back into names, and doubling
//!   every backslash of a program's output would garble it;
//! - [`Text`] keeps `\n` and `\t` (a log has lines and columns); every
//!   other control, `\r` included, is escaped. [`line`] escapes `\n` too:
//!   an error is one line, and a path can't add a second one.
//!
//! `--json` output is exact JSON ([`json`]): serde_json writes C0 controls
//! as `\u00XX` already; DEL and the C1 controls, which it leaves raw, get
//! the same `\u00XX` form, which any JSON reader turns back into the same
//! string.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// What one escaping keeps as it is.
#[derive(Clone, Copy)]
struct Rules {
    /// `\n` and `\t` pass (output with lines); else they are escaped.
    layout: bool,
    /// `\` is doubled (names, to be read back exactly).
    backslash: bool,
}

const NAME: Rules = Rules {
    layout: false,
    backslash: true,
};
const LINE: Rules = Rules {
    layout: false,
    backslash: false,
};
const TEXT: Rules = Rules {
    layout: true,
    backslash: false,
};

/// A file name, path, sandbox name or command-line argument, for a line
/// of output: every control escaped and `\` doubled.
pub fn name(s: &str) -> Cow<'_, str> {
    escape_str(s, NAME)
}

/// A path, which may not be UTF-8: as [`name`], with each byte that is not
/// part of valid UTF-8 as `\xNN`.
pub fn path(p: &Path) -> Cow<'_, str> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = p.as_os_str().as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(s) => escape_str(s, NAME),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len() + 8);
            let rest = escape_bytes(bytes, NAME, &mut out);
            hex_bytes(rest, &mut out);
            Cow::Owned(out)
        }
    }
}

/// A message meant as one line (an error, a warning, its hint): every
/// control escaped, `\n` included; `\` as it is.
pub fn line(s: &str) -> Cow<'_, str> {
    escape_str(s, LINE)
}

/// Output that goes to a terminal (a detached sandbox's log, a patch of
/// the files it wrote), escaped as it streams: `\n` and `\t` pass, every
/// other control and each invalid byte is escaped, `\` stays. A UTF-8
/// character split between two [`Text::push`] calls is held back until
/// its end comes.
#[derive(Default)]
pub struct Text {
    /// The start of a character that the last push ended in the middle of.
    held: Vec<u8>,
}

impl Text {
    /// The escaped form of `bytes`, and of what was held back before them.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len());
        if self.held.is_empty() {
            self.held = escape_bytes(bytes, TEXT, &mut out).to_vec();
        } else {
            let mut all = std::mem::take(&mut self.held);
            all.extend_from_slice(bytes);
            self.held = escape_bytes(&all, TEXT, &mut out).to_vec();
        }
        out
    }

    /// The end of the stream: what was held back is not a character.
    pub fn finish(self) -> String {
        let mut out = String::new();
        hex_bytes(&self.held, &mut out);
        out
    }
}

/// Whole text with the rules of [`Text`].
pub fn text(s: &str) -> Cow<'_, str> {
    escape_str(s, TEXT)
}

fn needs(c: char, r: Rules) -> bool {
    match c {
        '\n' | '\t' => !r.layout,
        '\\' => r.backslash,
        _ => c.is_control(),
    }
}

fn escape_str(s: &str, r: Rules) -> Cow<'_, str> {
    if !s.chars().any(|c| needs(c, r)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(s, r, &mut out);
    Cow::Owned(out)
}

fn push_escaped(s: &str, r: Rules, out: &mut String) {
    for c in s.chars() {
        if !needs(c, r) {
            out.push(c);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

fn hex_bytes(bytes: &[u8], out: &mut String) {
    for b in bytes {
        let _ = write!(out, "\\x{b:02x}");
    }
}

/// Escape `bytes` into `out`; what is left is an incomplete character at
/// the end (the caller holds it back or shows it as bytes).
fn escape_bytes<'a>(mut bytes: &'a [u8], r: Rules, out: &mut String) -> &'a [u8] {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                push_escaped(s, r, out);
                return &[];
            }
            Err(e) => {
                let (good, bad) = bytes.split_at(e.valid_up_to());
                push_escaped(std::str::from_utf8(good).expect("valid up to here"), r, out);
                match e.error_len() {
                    Some(n) => {
                        hex_bytes(&bad[..n], out);
                        bytes = &bad[n..];
                    }
                    None => return bad,
                }
            }
        }
    }
}

/// `v` as compact JSON whose strings carry no raw control character: DEL
/// and the C1 controls as `\u00XX` too.
pub fn json(v: &serde_json::Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, NoRawControls);
    v.serialize(&mut ser).expect("a JSON value serializes");
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

/// serde_json's compact formatter, with DEL and the C1 controls (which it
/// writes raw) escaped as `\u00XX`.
struct NoRawControls;

impl serde_json::ser::Formatter for NoRawControls {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_control() {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    /// No byte that a terminal acts on: C0 (but `\n`/`\t` when allowed),
    /// DEL, or a C1 control's UTF-8 form (C2 80..C2 9F).
    fn inert(s: &str, layout: bool) -> bool {
        s.chars()
            .all(|c| !c.is_control() || (layout && (c == '\n' || c == '\t')))
    }

    #[test]
    fn plain_names_are_borrowed_unchanged() {
        for s in ["", "src/main.rs", "ünïcode ✓ 名前", "a b", "~/.config"] {
            assert!(matches!(name(s), Cow::Borrowed(x) if x == s), "{s}");
            assert!(matches!(line(s), Cow::Borrowed(x) if x == s), "{s}");
            assert!(matches!(text(s), Cow::Borrowed(x) if x == s), "{s}");
        }
    }

    #[test]
    fn the_attacks_from_the_issue_are_inert() {
        let title = "a\x1b]0;pwned\x07b";
        let erase = "c\x1b[2K\rd";
        assert_eq!(name(title), r"a\x1b]0;pwned\x07b");
        assert_eq!(name(erase), r"c\x1b[2K\x0dd");
        assert_eq!(line(erase), r"c\x1b[2K\x0dd");
        assert_eq!(text(erase), r"c\x1b[2K\x0dd");
        for s in [title, erase] {
            assert!(!inert(s, true), "the control: raw, {s:?} is not inert");
            assert!(inert(&name(s), false));
            assert!(inert(&line(s), false));
            assert!(inert(&text(s), true));
        }
    }

    #[test]
    fn each_kind_of_control_has_its_form() {
        assert_eq!(name("\0"), r"\x00");
        assert_eq!(name("\x1f"), r"\x1f");
        assert_eq!(name("\x7f"), r"\x7f");
        // C1: CSI alone starts a sequence on some terminals.
        assert_eq!(name("\u{9b}31m"), r"\u{9b}31m");
        assert_eq!(name("\u{80}\u{9f}"), r"\u{80}\u{9f}");
        // Just past C1: printable, left alone.
        assert_eq!(name("\u{a0}é"), "\u{a0}é");
    }

    #[test]
    fn newline_and_tab_pass_only_in_text() {
        assert_eq!(name("a\nb\tc"), r"a\x0ab\x09c");
        assert_eq!(line("a\nb\tc"), r"a\x0ab\x09c");
        assert_eq!(text("a\nb\tc\r\n"), "a\nb\tc\\x0d\n");
    }

    #[test]
    fn a_backslash_is_doubled_in_names_only() {
        // Six printable characters and a real ESC: two names, two forms.
        assert_eq!(name(r"a\x1b"), r"a\\x1b");
        assert_eq!(name("a\x1b"), r"a\x1b");
        assert_ne!(name(r"a\x1b"), name("a\x1b"));
        assert_eq!(line(r"C:\dir"), r"C:\dir");
        assert_eq!(text(r"C:\dir"), r"C:\dir");
    }

    #[test]
    fn invalid_utf8_in_a_path_is_shown_as_bytes() {
        let p = Path::new(OsStr::from_bytes(b"/tmp/bad\xffname\xc3"));
        assert_eq!(path(p), r"/tmp/bad\xffname\xc3");
        // Never the form of a control: C1 is \u{..}, C0 below \x80.
        let c1 = Path::new(OsStr::from_bytes("x\u{9b}".as_bytes()));
        let raw = Path::new(OsStr::from_bytes(b"x\x9b"));
        assert_eq!(path(c1), r"x\u{9b}");
        assert_eq!(path(raw), r"x\x9b");
        assert_eq!(path(Path::new("a\\b\x1b")), r"a\\b\x1b");
        assert!(matches!(path(Path::new("/plain")), Cow::Borrowed("/plain")));
    }

    #[test]
    fn text_streams_across_split_characters() {
        let all = "é\x1b[2K\u{9b}1m ✓\n".as_bytes();
        let whole = {
            let mut t = Text::default();
            t.push(all) + &t.finish()
        };
        assert_eq!(whole, "é\\x1b[2K\\u{9b}1m ✓\n");
        // Cut at every place, inside characters too: the same text.
        for cut in 0..=all.len() {
            let mut t = Text::default();
            let mut got = t.push(&all[..cut]);
            got += &t.push(&all[cut..]);
            got += &t.finish();
            assert_eq!(got, whole, "cut at {cut}");
        }
        // One byte at a time.
        let mut t = Text::default();
        let got: String = all.iter().map(|b| t.push(&[*b])).collect();
        assert_eq!(got + &t.finish(), whole);
    }

    #[test]
    fn text_shows_invalid_bytes_and_an_unfinished_end() {
        let mut t = Text::default();
        assert_eq!(t.push(b"ok\xff\n\xe2\x9c"), "ok\\xff\n");
        assert_eq!(t.finish(), r"\xe2\x9c");
    }

    #[test]
    fn json_is_exact_and_carries_no_raw_control() {
        let s = "a\x1b]0;x\x07\u{7f}\u{9b}é\\\n";
        let v = serde_json::json!({ "path": s });
        let out = json(&v);
        assert!(inert(&out, false), "{out}");
        assert_eq!(
            out, r#"{"path":"a\u001b]0;x\u0007\u007f\u009bé\\\n"}"#,
            "C0 as serde_json writes it, DEL and C1 the same way"
        );
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back["path"], s, "read back, the same string");
        // The control: serde_json alone leaves DEL and C1 raw.
        assert!(!inert(&v.to_string(), false));
        assert_eq!(json(&serde_json::json!([1, "x", null])), r#"[1,"x",null]"#);
    }
}
