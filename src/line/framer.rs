//! Splits a byte stream into lines with a length limit. A line longer than
//! the limit is reported once as too long and then skipped up to its
//! newline, so the connection keeps working. The state survives between
//! reads, so a line split across many reads (even one byte at a time) is
//! found whole, and the framer remembers how far it has searched, so a line
//! that trickles in costs time linear in its length, not quadratic.

/// One step of framing over the unread bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// A complete line without its `\n` or `\r\n`; `consumed` bytes used.
    Line { line: &'a [u8], consumed: usize },
    /// A line went over the limit: answer `too_large` once. The rest of it
    /// is skipped as it arrives.
    TooLong { consumed: usize },
    /// Bytes of an over-long line, skipped.
    Skip { consumed: usize },
    /// No complete line yet; keep the bytes and read more.
    NeedMore,
}

/// The longest line limit kept (bytes); larger settings are capped here,
/// far above any memory budget.
const MAX_LINE_CAP: u32 = u32::MAX - 2;

/// The framing state of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Framer {
    /// 32 bits, as `scanned`: it is in every connection's slot, and no
    /// line limit comes near 4 GiB (larger settings are capped).
    max_line: u32,
    /// Inside an over-long line, skipping to its end.
    discarding: bool,
    /// Bytes at the start of the unread data already searched for a
    /// newline without finding one (the caller passes the same unread
    /// bytes again, with more after them).
    scanned: u32,
}

impl Framer {
    pub fn new(max_line: usize) -> Framer {
        Framer {
            max_line: u32::try_from(max_line)
                .unwrap_or(u32::MAX)
                .min(MAX_LINE_CAP),
            discarding: false,
            scanned: 0,
        }
    }

    /// The next step over `data` (the bytes not yet consumed).
    pub fn next<'a>(&mut self, data: &'a [u8]) -> Step<'a> {
        if data.is_empty() {
            return Step::NeedMore;
        }
        if self.discarding {
            return match memchr::memchr(b'\n', data) {
                Some(i) => {
                    self.discarding = false;
                    Step::Skip { consumed: i + 1 }
                }
                None => Step::Skip {
                    consumed: data.len(),
                },
            };
        }
        // A line may hold max_line bytes plus "\r\n": never search further.
        // (Saturating: `--max-line` takes any u64.)
        let window = &data[..data.len().min((self.max_line as usize).saturating_add(2))];
        let from = (self.scanned as usize).min(window.len());
        match memchr::memchr(b'\n', &window[from..]).map(|i| from + i) {
            Some(i) => {
                self.scanned = 0;
                let mut line = &data[..i];
                if let [rest @ .., b'\r'] = line {
                    line = rest;
                }
                if line.len() > self.max_line as usize {
                    Step::TooLong { consumed: i + 1 }
                } else {
                    Step::Line {
                        line,
                        consumed: i + 1,
                    }
                }
            }
            None if window.len() > (self.max_line as usize).saturating_add(1) => {
                self.scanned = 0;
                self.discarding = true;
                Step::TooLong {
                    consumed: window.len(),
                }
            }
            None => {
                // At most max_line + 2, so it fits.
                self.scanned = window.len() as u32;
                Step::NeedMore
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `chunk` bytes; returns lines and too-long marks.
    fn frame(input: &[u8], chunk: usize, max: usize) -> Vec<String> {
        let mut framer = Framer::new(max);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            let mut pos = 0;
            loop {
                match framer.next(&buf[pos..]) {
                    Step::Line { line, consumed } => {
                        out.push(String::from_utf8_lossy(line).into_owned());
                        pos += consumed;
                    }
                    Step::TooLong { consumed } => {
                        out.push("<too long>".into());
                        pos += consumed;
                    }
                    Step::Skip { consumed } => pos += consumed,
                    Step::NeedMore => break,
                }
            }
            buf.drain(..pos);
        }
        out
    }

    #[test]
    fn lines_split_on_newlines_and_crlf() {
        let input = b"PING\r\nSEND bob hi\n\nHELP\n";
        assert_eq!(frame(input, 1000, 64), ["PING", "SEND bob hi", "", "HELP"]);
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_lines() {
        let input = b"PING\r\n{\"cmd\":\"ping\"}\nQUIT\n";
        assert_eq!(frame(input, 1, 64), frame(input, 1000, 64));
    }

    #[test]
    fn long_line_is_reported_once_and_skipped() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\nPING\n");
        for chunk in [1, 7, 1000] {
            assert_eq!(
                frame(&input, chunk, 10),
                ["<too long>", "PING"],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes() {
        let mut input = vec![b'x'; 10];
        input.extend_from_slice(b"\r\n");
        assert_eq!(frame(&input, 3, 10), ["x".repeat(10)]);
        let mut over = vec![b'x'; 11];
        over.extend_from_slice(b"\nPING\n");
        assert_eq!(frame(&over, 1000, 10), ["<too long>", "PING"]);
    }

    #[test]
    fn the_largest_limit_does_not_overflow() {
        let input = b"PING\r\nSEND bob hi\n";
        assert_eq!(frame(input, 1000, usize::MAX), ["PING", "SEND bob hi"]);
        assert_eq!(frame(input, 1, usize::MAX - 1), ["PING", "SEND bob hi"]);
    }

    #[test]
    fn a_trickled_line_is_searched_once() {
        let mut framer = Framer::new(1 << 20);
        let mut buf = Vec::new();
        for _ in 0..1000 {
            buf.push(b'x');
            assert_eq!(framer.next(&buf), Step::NeedMore);
            assert_eq!(
                framer.scanned as usize,
                buf.len(),
                "resumes where it stopped"
            );
        }
        buf.push(b'\n');
        assert_eq!(
            framer.next(&buf),
            Step::Line {
                line: &buf[..1000],
                consumed: 1001
            }
        );
        assert_eq!(framer.scanned, 0, "the next line starts fresh");
    }

    #[test]
    fn incomplete_line_waits() {
        let mut framer = Framer::new(64);
        assert_eq!(framer.next(b"PIN"), Step::NeedMore);
    }
}
