//! MOTChallenge 2D text: `frame,id,bb_left,bb_top,bb_width,bb_height,conf[,x,y[,z]]`, one box a
//! line, read as motmetrics 1.4.0's `io.loadtxt(path, fmt="mot15-2D", min_confidence=…)` reads
//! it, and written back in the form MOTChallenge asks results in.
//!
//! Where this reader differs from motmetrics, it refuses what motmetrics would misread:
//! - a line with fewer than 7 fields (motmetrics reads its confidence as NaN and drops the
//!   line without a word) or more than 10;
//! - an empty field (`1,,2`), and anything but a number where the first seven fields are (the
//!   world coordinates x, y, z are not read: the 2D metrics never use them);
//! - the same id twice in one frame ([`ParseError::Duplicate`]). motmetrics takes both rows as
//!   two objects: in an object's first frame it then stops with a `KeyError`, and in later
//!   frames the second row's match counts as an ID switch, while its ID measures count that
//!   frame once for the id — counts that no longer add up (an IDP of 1 beside unmatched
//!   predictions). Only rows that pass the confidence filter are checked.
//!
//! Fields are separated by a comma or by whitespace, as motmetrics' separator `\s+|\t+|,` does;
//! whitespace next to a comma belongs to the separator here (motmetrics' regular expression
//! splits `1, 2` into three fields, one empty, and pandas then refuses the file).

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

/// The confidence below which ground-truth rows are left out: MOTChallenge marks the boxes to
/// ignore with 0 (`min_confidence=1`, as motmetrics' documentation asks for ground truth).
pub const GROUND_TRUTH_MIN_CONFIDENCE: f64 = 1.0;

/// The confidence below which a tracker's rows are left out: motmetrics' default, -1, keeps
/// MOTChallenge's "no confidence" rows (`-1`).
pub const RESULT_MIN_CONFIDENCE: f64 = -1.0;

/// The fields of a line, by position.
const FIELDS: [&str; 10] = [
    "frame",
    "id",
    "bb_left",
    "bb_top",
    "bb_width",
    "bb_height",
    "conf",
    "x",
    "y",
    "z",
];

/// The fields every line must have (through `conf`).
const REQUIRED: usize = 7;

/// One box of one object (ground truth) or hypothesis (a tracker's output) in one frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    /// The frame number; MOTChallenge counts frames from 1.
    pub frame: i64,
    pub id: i64,
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
    /// For ground truth a flag (0: ignore this box), for a tracker its confidence.
    pub conf: f64,
}

impl fmt::Display for Row {
    /// The MOTChallenge result line, without its newline: the numbers as Rust prints `f64`
    /// (the shortest text that reads back to the same value), world coordinates `-1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{},{},{},{},-1,-1,-1",
            self.frame, self.id, self.left, self.top, self.width, self.height, self.conf
        )
    }
}

/// Rows as a MOTChallenge result file: one [`Row`] a line, in the order given. A tracker whose
/// frames count from 0 writes frame `seq + 1`.
#[must_use]
pub fn to_text(rows: &[Row]) -> String {
    use fmt::Write as _;
    let mut out = String::new();
    for r in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{r}");
    }
    out
}

/// The rows of one file that passed the confidence filter, in file order, no id twice in a
/// frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sequence {
    rows: Vec<Row>,
}

impl Sequence {
    /// Rows made elsewhere (a tracker run in-process), as if read from a file that holds just
    /// them: a [`ParseError::Duplicate`] names rows by their position from 1 as its lines.
    pub fn from_rows(input: &str, rows: Vec<Row>) -> Result<Self, ParseError> {
        let mut seen = BTreeMap::new();
        for (i, r) in rows.iter().enumerate() {
            check_unique(&mut seen, input, i + 1, r)?;
        }
        Ok(Self { rows })
    }

    /// The rows that passed the confidence filter, in file order.
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }
}

/// A line that could not be read, named by its input and line (from 1).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{input}: line {line}: {error}")]
    Read {
        input: String,
        line: usize,
        #[source]
        error: std::io::Error,
    },
    #[error(
        "{input}: line {line}: {found} fields; a MOTChallenge line has 7 to 10: \
         frame,id,bb_left,bb_top,bb_width,bb_height,conf[,x,y[,z]]"
    )]
    FieldCount {
        input: String,
        line: usize,
        found: usize,
    },
    #[error("{input}: line {line}: field {position} ({field}) is empty")]
    EmptyField {
        input: String,
        line: usize,
        position: usize,
        field: &'static str,
    },
    #[error("{input}: line {line}: {field} `{text}` is not {expected}")]
    BadField {
        input: String,
        line: usize,
        field: &'static str,
        text: String,
        expected: &'static str,
    },
    #[error(
        "{input}: line {line}: frame {frame} has id {id} already (line {first_line}); \
         an id is one box per frame"
    )]
    Duplicate {
        input: String,
        line: usize,
        first_line: usize,
        frame: i64,
        id: i64,
    },
}

/// Reads MOTChallenge 2D text from `text`, named `input` in errors, keeping the rows whose
/// confidence is at least `min_confidence` ([`GROUND_TRUTH_MIN_CONFIDENCE`] for ground truth,
/// [`RESULT_MIN_CONFIDENCE`] for a tracker's output). Blank lines are skipped.
pub fn parse(input: &str, text: impl BufRead, min_confidence: f64) -> Result<Sequence, ParseError> {
    let mut seq = Sequence::default();
    let mut seen = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|error| ParseError::Read {
            input: input.to_owned(),
            line: line_no,
            error,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let row = parse_line(input, line_no, &line)?;
        if row.conf >= min_confidence {
            check_unique(&mut seen, input, line_no, &row)?;
            seq.rows.push(row);
        }
    }
    Ok(seq)
}

fn check_unique(
    seen: &mut BTreeMap<(i64, i64), usize>,
    input: &str,
    line: usize,
    row: &Row,
) -> Result<(), ParseError> {
    if let Some(&first_line) = seen.get(&(row.frame, row.id)) {
        return Err(ParseError::Duplicate {
            input: input.to_owned(),
            line,
            first_line,
            frame: row.frame,
            id: row.id,
        });
    }
    seen.insert((row.frame, row.id), line);
    Ok(())
}

fn parse_line(input: &str, line: usize, text: &str) -> Result<Row, ParseError> {
    let fields = split(text).map_err(|position| ParseError::EmptyField {
        input: input.to_owned(),
        line,
        position,
        field: FIELDS.get(position - 1).copied().unwrap_or("beyond z"),
    })?;
    if !(REQUIRED..=FIELDS.len()).contains(&fields.len()) {
        return Err(ParseError::FieldCount {
            input: input.to_owned(),
            line,
            found: fields.len(),
        });
    }
    let bad = |i: usize, expected: &'static str| ParseError::BadField {
        input: input.to_owned(),
        line,
        field: FIELDS[i],
        text: fields[i].to_owned(),
        expected,
    };
    let number = |i: usize| {
        fields[i]
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad(i, "a finite number"))
    };
    let integer = |i: usize| integer(fields[i]).ok_or_else(|| bad(i, "an integer"));
    let frame = integer(0)?;
    if frame < 1 {
        return Err(bad(0, "a frame number from 1"));
    }
    let size = |i: usize| {
        let v = number(i)?;
        if v >= 0.0 {
            Ok(v)
        } else {
            Err(bad(i, "a size of 0 or more"))
        }
    };
    Ok(Row {
        frame,
        id: integer(1)?,
        left: number(2)?,
        top: number(3)?,
        width: size(4)?,
        height: size(5)?,
        conf: number(6)?,
    })
}

/// An integer as pandas reads one into a numeric column: `12`, or a whole `12.0`.
fn integer(text: &str) -> Option<i64> {
    /// Integers up to 2^53 are exact in an f64, as pandas would hold a column with a `12.0`.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    text.parse::<i64>().ok().or_else(|| {
        let v = text.parse::<f64>().ok()?;
        (v.fract() == 0.0 && v.abs() <= EXACT).then_some(v as i64)
    })
}

/// The fields of a line: separated by commas and by runs of whitespace, whitespace next to a
/// comma being part of the separator. `Err(position)` (from 1) of an empty field.
fn split(line: &str) -> Result<Vec<&str>, usize> {
    let mut fields = Vec::new();
    for piece in line.trim().split(',') {
        let before = fields.len();
        fields.extend(piece.split_whitespace());
        if fields.len() == before {
            return Err(before + 1);
        }
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, min_confidence: f64) -> Result<Sequence, ParseError> {
        parse("t.txt", text.as_bytes(), min_confidence)
    }

    #[test]
    fn reads_commas_whitespace_and_both() {
        let s = read(
            "1,1,399,182,121,229,1,-1,-1,-1\n\n2 1 400.5\t183 121 229 1 -1 -1\n3, 1, 401, 184, 121, 229, 1\n",
            GROUND_TRUTH_MIN_CONFIDENCE,
        )
        .unwrap();
        let r = s.rows();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[1],
            Row {
                frame: 2,
                id: 1,
                left: 400.5,
                top: 183.0,
                width: 121.0,
                height: 229.0,
                conf: 1.0
            }
        );
        assert_eq!((r[2].frame, r[2].left), (3, 401.0));
    }

    #[test]
    fn drops_rows_below_the_confidence() {
        let text =
            "1,1,0,0,10,10,1,-1,-1,-1\n2,1,0,0,10,10,0,-1,-1,-1\n2,2,0,0,10,10,-1,-1,-1,-1\n";
        let gt = read(text, GROUND_TRUTH_MIN_CONFIDENCE).unwrap();
        assert_eq!(gt.rows().len(), 1);
        assert_eq!(read(text, RESULT_MIN_CONFIDENCE).unwrap().rows().len(), 3);
    }

    #[test]
    fn errors_name_the_input_line_and_field() {
        let e = read("1,1,0,0,10,10,1\n2,1,0,zero,10,10,1\n", 1.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.txt: line 2: bb_top `zero` is not a finite number"
        );
        let e = read("1,1.5,0,0,10,10,1\n", 1.0).unwrap_err();
        assert_eq!(e.to_string(), "t.txt: line 1: id `1.5` is not an integer");
        let e = read("0,1,0,0,10,10,1\n", 1.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.txt: line 1: frame `0` is not a frame number from 1"
        );
        let e = read("1,1,0,0,-10,10,1\n", 1.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.txt: line 1: bb_width `-10` is not a size of 0 or more"
        );
        let e = read("1,1,0,0,10\n", 1.0).unwrap_err();
        assert!(
            matches!(
                e,
                ParseError::FieldCount {
                    line: 1,
                    found: 5,
                    ..
                }
            ),
            "{e}"
        );
        let e = read("1,1,0,,10,10,1\n", 1.0).unwrap_err();
        assert_eq!(e.to_string(), "t.txt: line 1: field 4 (bb_top) is empty");
        let e = read("1,1,0,0,10,10,nan\n", -1.0).unwrap_err();
        assert!(
            matches!(e, ParseError::BadField { field: "conf", .. }),
            "{e}"
        );
        let e = read("1,1,0,0,10,10,1,-1,-1,-1,7\n", 1.0).unwrap_err();
        assert!(matches!(e, ParseError::FieldCount { found: 11, .. }), "{e}");
    }

    #[test]
    fn refuses_an_id_twice_in_a_frame_among_the_kept_rows() {
        let text = "1,1,0,0,10,10,1\n1,2,0,0,10,10,1\n1,1,5,5,10,10,1\n";
        let e = read(text, 1.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.txt: line 3: frame 1 has id 1 already (line 1); an id is one box per frame"
        );
        // A duplicate the confidence filter drops is no duplicate.
        let text = "1,1,0,0,10,10,1\n1,1,5,5,10,10,0\n";
        assert_eq!(read(text, 1.0).unwrap().rows().len(), 1);
    }

    #[test]
    fn whole_decimals_are_integers() {
        let s = read("3.0,7.000,0,0,10,10,1\n", 1.0).unwrap();
        assert_eq!((s.rows()[0].frame, s.rows()[0].id), (3, 7));
    }

    #[test]
    fn written_results_read_back_the_same() {
        let rows = vec![
            Row {
                frame: 1,
                id: 4,
                left: 0.1 + 0.2,
                top: -3.5,
                width: 1e-7,
                height: 123_456.789,
                conf: 0.93,
            },
            Row {
                frame: 2,
                id: 4,
                left: 1.0,
                top: 2.0,
                width: 3.0,
                height: 4.0,
                conf: -1.0,
            },
        ];
        let text = to_text(&rows);
        assert!(text.starts_with("1,4,0.30000000000000004,-3.5,"), "{text}");
        assert!(text.ends_with("2,4,1,2,3,4,-1,-1,-1,-1\n"), "{text}");
        let back = parse("w", text.as_bytes(), RESULT_MIN_CONFIDENCE).unwrap();
        assert_eq!(back.rows(), rows);
    }
}
