//! A fast check that bytes are UTF-8 and one JSON value, for the common case of valid
//! input: one pass, no allocation below 64 levels of nesting, no recursion, strings scanned
//! eight bytes at a time. It accepts exactly what `std::str::from_utf8` and then serde_json
//! skipping a value (`IgnoredAny`) accept, so those are only needed to say why an input is
//! invalid.

/// What a scan of valid JSON found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Valid {
    /// Whether a `\n` or `\r` occurs (only possible as whitespace between tokens).
    pub(crate) line_breaks: bool,
}

/// `Some` when `text` is UTF-8 and exactly one JSON value with optional whitespace around it
/// (outside strings, JSON is ASCII).
pub(crate) fn scan(text: &[u8]) -> Option<Valid> {
    let mut scanner = Scanner { text, at: 0, line_breaks: false };
    let mut open = Nesting::default();
    'value: loop {
        scanner.skip_whitespace();
        match scanner.next()? {
            b'{' => {
                scanner.skip_whitespace();
                if !scanner.eat(b'}') {
                    open.push(Container::Object);
                    scanner.key()?;
                    continue 'value;
                }
            }
            b'[' => {
                scanner.skip_whitespace();
                if !scanner.eat(b']') {
                    open.push(Container::Array);
                    continue 'value;
                }
            }
            b'"' => scanner.string()?,
            b't' => scanner.literal(b"rue")?,
            b'f' => scanner.literal(b"alse")?,
            b'n' => scanner.literal(b"ull")?,
            first @ (b'-' | b'0'..=b'9') => scanner.number(first)?,
            _ => return None,
        }
        // A value ended: close the containers it ends, or go on to the next value.
        loop {
            scanner.skip_whitespace();
            let Some(container) = open.innermost() else {
                return (scanner.at == text.len()).then_some(Valid { line_breaks: scanner.line_breaks });
            };
            match (scanner.next()?, container) {
                (b',', Container::Array) => continue 'value,
                (b',', Container::Object) => {
                    scanner.skip_whitespace();
                    scanner.key()?;
                    continue 'value;
                }
                (b']', Container::Array) | (b'}', Container::Object) => open.pop(),
                _ => return None,
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Array,
    Object,
}

/// The open containers, innermost last, one bit each.
#[derive(Debug, Default)]
struct Nesting {
    depth: usize,
    first_64: u64,
    deeper: Vec<u64>,
}

impl Nesting {
    #[inline(always)]
    fn push(&mut self, container: Container) {
        let bit = u64::from(container == Container::Object);
        match self.depth.checked_sub(64) {
            None => self.first_64 = self.first_64 & !(1 << self.depth) | bit << self.depth,
            Some(deep) => {
                if deep / 64 == self.deeper.len() {
                    self.deeper.push(0);
                }
                let word = &mut self.deeper[deep / 64];
                *word = *word & !(1 << (deep % 64)) | bit << (deep % 64);
            }
        }
        self.depth += 1;
    }

    #[inline(always)]
    fn innermost(&self) -> Option<Container> {
        let top = self.depth.checked_sub(1)?;
        let word = match top.checked_sub(64) {
            None => self.first_64 >> top,
            Some(deep) => self.deeper[deep / 64] >> (deep % 64),
        };
        Some(if word & 1 == 1 { Container::Object } else { Container::Array })
    }

    #[inline(always)]
    fn pop(&mut self) {
        self.depth -= 1;
    }
}

/// Every method is `#[inline(always)]`: inlined into `scan`, the position stays in a
/// register; as calls, it goes through memory at every byte, which made the scan 1.4×
/// slower inside the sandbox.
struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
    line_breaks: bool,
}

impl Scanner<'_> {
    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        let byte = *self.text.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    #[inline(always)]
    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.text.get(self.at) == Some(&byte);
        self.at += usize::from(matched);
        matched
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        while let Some(&byte) = self.text.get(self.at) {
            match byte {
                b' ' | b'\t' => {}
                b'\n' | b'\r' => self.line_breaks = true,
                _ => return,
            }
            self.at += 1;
        }
    }

    /// An object key and its colon.
    #[inline(always)]
    fn key(&mut self) -> Option<()> {
        (self.next()? == b'"').then_some(())?;
        self.string()?;
        self.skip_whitespace();
        (self.next()? == b':').then_some(())
    }

    #[inline(always)]
    fn literal(&mut self, rest: &[u8]) -> Option<()> {
        let end = self.at + rest.len();
        (self.text.get(self.at..end)? == rest).then(|| self.at = end)
    }

    /// The rest of a string after its opening quote.
    #[inline(always)]
    fn string(&mut self) -> Option<()> {
        loop {
            self.skip_plain_string_bytes();
            match self.next()? {
                b'"' => return Some(()),
                lead @ 0x80.. => self.utf8_sequence(lead)?,
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        let hex = self.text.get(self.at..self.at + 4)?;
                        hex.iter().all(u8::is_ascii_hexdigit).then_some(())?;
                        self.at += 4;
                    }
                    _ => return None,
                },
                // A control character, which must be escaped.
                _ => return None,
            }
        }
    }

    /// The rest of a UTF-8 sequence after its first byte `lead` (0x80 or above), as
    /// `std::str::from_utf8` reads it: no overlong forms, surrogates or code points past
    /// U+10FFFF.
    #[inline(always)]
    fn utf8_sequence(&mut self, lead: u8) -> Option<()> {
        let (second, continuations) = match lead {
            0xC2..=0xDF => (0x80..=0xBF, 0),
            0xE0 => (0xA0..=0xBF, 1),
            0xE1..=0xEC | 0xEE..=0xEF => (0x80..=0xBF, 1),
            0xED => (0x80..=0x9F, 1),
            0xF0 => (0x90..=0xBF, 2),
            0xF1..=0xF3 => (0x80..=0xBF, 2),
            0xF4 => (0x80..=0x8F, 2),
            _ => return None,
        };
        second.contains(&self.next()?).then_some(())?;
        for _ in 0..continuations {
            (0x80..=0xBF).contains(&self.next()?).then_some(())?;
        }
        Some(())
    }

    /// Moves to the next `"`, `\`, control character or non-ASCII byte, eight bytes at a
    /// time: a byte is flagged by its high bit, or by the classic "has a zero byte" bit
    /// trick on `chunk ^ quote`, `chunk ^ backslash` and `chunk - 0x20`, exact for the
    /// lowest flagged byte.
    #[inline(always)]
    fn skip_plain_string_bytes(&mut self) {
        const ONES: u64 = u64::from_le_bytes([0x01; 8]);
        const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
        let zero_bytes = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS;
        while let Some(chunk) = self.text.get(self.at..self.at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            let flagged = zero_bytes(word ^ (ONES * u64::from(b'"')))
                | zero_bytes(word ^ (ONES * u64::from(b'\\')))
                | word.wrapping_sub(ONES * 0x20) & !word & HIGHS
                | word & HIGHS;
            if flagged != 0 {
                self.at += flagged.trailing_zeros() as usize / 8;
                return;
            }
            self.at += 8;
        }
        while let Some(&byte) = self.text.get(self.at) {
            if byte == b'"' || byte == b'\\' || !(0x20..0x80).contains(&byte) {
                return;
            }
            self.at += 1;
        }
    }

    /// The rest of a number after its first byte: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    #[inline(always)]
    fn number(&mut self, first: u8) -> Option<()> {
        let first_digit = if first == b'-' { self.next()? } else { first };
        match first_digit {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.') {
            self.some_digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _sign = self.eat(b'+') || self.eat(b'-');
            self.some_digits()?;
        }
        // `01`: serde_json refuses a digit after a leading zero, as JSON does.
        match self.text.get(self.at) {
            Some(b'0'..=b'9') => None,
            _ => Some(()),
        }
    }

    #[inline(always)]
    fn digits(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
    }

    #[inline(always)]
    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use serde::de::IgnoredAny;

    use super::*;

    /// What the scan stands in for: UTF-8, then serde_json (which, reading bytes, leaves
    /// the bytes inside strings unchecked).
    fn serde_accepts(text: &[u8]) -> bool {
        std::str::from_utf8(text).is_ok() && serde_json::from_slice::<IgnoredAny>(text).is_ok()
    }

    #[test]
    fn valid_json_of_every_kind() {
        for text in [
            "0",
            "-0.5e+3",
            "1E9",
            "123456789012345678901234567890",
            "1e400",
            "\"\"",
            "\"a\\u00E9\\n\\\\\\\"\\/\"",
            "\"\u{e9}\u{2028}\"",
            "true",
            "false",
            "null",
            "[]",
            "{}",
            " [ 1 , { \"a\" : [ ] , \"b\" : null } ] ",
            "{\"type\":\"trade\",\"price\":\"64012.25\",\"size\":0.5,\"tags\":[\"a\",\"b\"]}",
        ] {
            assert!(scan(text.as_bytes()).is_some(), "{text:?} is JSON");
            assert!(serde_accepts(text.as_bytes()), "{text:?}: serde_json agrees");
        }
    }

    #[test]
    fn invalid_json_of_every_kind() {
        for text in [
            "",
            " ",
            "01",
            "-",
            "-a",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "[1,]",
            "{\"a\":1,}",
            "[1 2]",
            "{\"a\" 1}",
            "{1:2}",
            "{\"a\"}",
            "[",
            "]",
            "{",
            "\"abc",
            "\"\\q\"",
            "\"\\u12g4\"",
            "\"\\u12\"",
            "\"a\tb\"",
            "tru",
            "nul",
            "True",
            "{} {}",
            "1 x",
            "[}",
            "{]",
            "\u{feff}1",
            "\u{e9}",
        ] {
            assert!(scan(text.as_bytes()).is_none(), "{text:?} is not JSON");
            assert!(!serde_accepts(text.as_bytes()), "{text:?}: serde_json agrees");
        }
    }

    /// Every lead byte with every second byte and a spread of later ones, inside a string,
    /// and the same bytes outside one: accepted exactly when `std::str::from_utf8` accepts.
    #[test]
    fn utf8_inside_strings_is_checked_as_std_checks_it() {
        const LATER: [u8; 5] = [0x7f, 0x80, 0x9f, 0xbf, 0xc0];
        for lead in 0x80..=0xffu8 {
            for second in 0..=0xffu8 {
                for third in LATER {
                    for fourth in LATER {
                        let sequence = [lead, second, third, fourth];
                        let quoted = [&b"\""[..], &sequence, b"\""].concat();
                        assert_eq!(scan(&quoted).is_some(), serde_accepts(&quoted), "{sequence:x?}");
                        assert!(scan(&sequence).is_none(), "{sequence:x?} outside a string");
                    }
                }
            }
        }
        assert!(scan("\"caf\u{e9} \u{1f600} \u{10ffff}\"".as_bytes()).is_some());
    }

    #[test]
    fn line_breaks_are_noticed_between_tokens_only() {
        assert_eq!(scan(b"{\r\n\"a\":1}"), Some(Valid { line_breaks: true }));
        assert_eq!(scan(b"{\"a\":\"x\\ny\"}"), Some(Valid { line_breaks: false }));
    }

    #[test]
    fn deep_nesting_needs_no_recursion_and_is_checked_at_every_level() {
        for depth in [63, 64, 65, 128, 129, 100_000] {
            let mixed: String = (0..depth).map(|level| if level % 3 == 0 { "{\"k\":" } else { "[" }).collect();
            let closing: String = (0..depth).rev().map(|level| if level % 3 == 0 { "}" } else { "]" }).collect();
            let valid = format!("{mixed}1{closing}");
            assert!(scan(valid.as_bytes()).is_some(), "depth {depth}");
            assert!(serde_accepts(valid.as_bytes()), "depth {depth}: serde_json agrees");
            // Swap the outermost closer for the wrong kind.
            let mut wrong = valid.into_bytes();
            let last = wrong.len() - 1;
            wrong[last] = if wrong[last] == b'}' { b']' } else { b'}' };
            assert!(scan(&wrong).is_none(), "depth {depth}, wrong outer closer");
        }
    }

    #[test]
    fn string_scanning_finds_specials_at_every_offset_of_a_chunk() {
        for offset in 0..20 {
            let plain = "x".repeat(offset);
            for (special, valid) in [("\"", true), ("\\n\"", true), ("\u{1}\"", false), ("\u{1f}\"", false)] {
                let text = format!("\"{plain}{special}");
                assert_eq!(scan(text.as_bytes()).is_some(), valid, "{text:?}");
                assert_eq!(serde_accepts(text.as_bytes()), valid, "{text:?}: serde_json agrees");
            }
        }
    }

    /// Strings of JSON's pieces and near-misses: the scan and serde_json always agree.
    #[test]
    fn agrees_with_serde_json_on_generated_input() {
        let mut valid = 0;
        for text in generated::inputs(200_000, 14) {
            let scanned = scan(text.as_bytes()).is_some();
            assert_eq!(scanned, serde_accepts(text.as_bytes()), "{text:?}");
            valid += usize::from(scanned);
        }
        assert!(valid > 5_000, "enough valid input to mean something: {valid}");
    }
}

/// Inputs for the property tests of the scan and of the records that copy what it accepts.
#[cfg(test)]
pub(crate) mod generated {
    /// Pieces of JSON, near-misses and single bytes, joined at random.
    const PIECES: [&str; 37] = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "\"a\"",
        "\"\\n\"",
        "\"\\u00e9\"",
        "\"\u{e9}\"",
        "\"x\\\"y\"",
        "\"abcdefghijklmnop\"",
        "\"\\q\"",
        "1",
        "0",
        "01",
        "-0.5e3",
        "1e",
        ".",
        "e",
        "-",
        "true",
        "null",
        "t",
        "r",
        "u",
        " ",
        "\n",
        "\r\n",
        "\t",
        "\u{1}",
        "\u{2028}",
        "\u{e9}",
        "nul",
        "[1,2]",
    ];

    /// `count` strings of up to `max_pieces - 1` pieces each, the same on every run.
    pub(crate) fn inputs(count: usize, max_pieces: u64) -> impl Iterator<Item = String> {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        (0..count).map(move |_| {
            let length = next() % max_pieces;
            (0..length).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect()
        })
    }
}
