//! `vigil test`: snapshot tests of detections for recorded sessions. A manifest
//! (`vigil-tests.yml`) lists recordings, each with its vigil.yml and its expected output;
//! each is replayed lock-step through the real dataflow and compared with its expectation
//! under a tolerance profile (`vigil_compare`). `--accept` writes the expectations.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use eyre::{WrapErr, bail, eyre};
use serde::Deserialize;
use vigil_compare::{Output, Profile, Report, Thresholds};
use vigil_config::Override;

use crate::dataflow;

/// `vigil-tests.yml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    /// The profile of every test that names none [default: exact].
    #[serde(default)]
    tolerance: Option<String>,
    tests: Vec<CaseFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// [default: the recording's file stem]
    name: Option<String>,
    recording: PathBuf,
    /// [default: vigil.yml beside the manifest]
    config: Option<PathBuf>,
    /// [default: expected/<name>.jsonl beside the manifest]
    expected: Option<PathBuf>,
    tolerance: Option<String>,
    /// Overrides in vigil.yml's terms.
    #[serde(default)]
    set: Vec<String>,
}

/// One recording to test, paths resolved against the manifest's folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub recording: PathBuf,
    pub config: PathBuf,
    /// `config:` was given (else the manifest's folder's vigil.yml).
    pub config_given: bool,
    pub expected: PathBuf,
    pub profile: Profile,
    pub set: Vec<Override>,
}

/// Reads a manifest; errors name the file and the key.
pub fn read_manifest(path: &Path) -> eyre::Result<Vec<Case>> {
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("reading the test manifest {}", path.display()))?;
    parse_manifest(path, &text)
}

fn parse_manifest(path: &Path, text: &str) -> eyre::Result<Vec<Case>> {
    let de = serde_yaml::Deserializer::from_str(text);
    let file: ManifestFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        let line = inner
            .location()
            .map_or(String::new(), |l| format!(":{}", l.line()));
        eyre!("{}{line}: `{at}`: {inner}", path.display())
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let profile = |what: &str, t: &Option<String>| -> eyre::Result<Option<Profile>> {
        t.as_deref()
            .map(|t| {
                t.parse::<Profile>()
                    .map_err(|e| eyre!("{}: {what}: {e}", path.display()))
            })
            .transpose()
    };
    let default = profile("tolerance", &file.tolerance)?.unwrap_or(Profile::Exact);
    if file.tests.is_empty() {
        bail!("{}: `tests` lists no recording", path.display());
    }
    let mut cases: Vec<Case> = Vec::new();
    for (i, c) in file.tests.into_iter().enumerate() {
        let name = match c.name {
            Some(n) => n,
            None => c
                .recording
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| {
                    eyre!(
                        "{}: tests[{i}]: no name and none in {}",
                        path.display(),
                        c.recording.display()
                    )
                })?
                .to_owned(),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            bail!(
                "{}: tests[{i}].name `{name}`: letters, digits, `-`, `_` and `.` only (it names files)",
                path.display()
            );
        }
        if cases.iter().any(|other| other.name == name) {
            bail!("{}: tests[{i}].name `{name}` appears twice", path.display());
        }
        let set = c
            .set
            .iter()
            .map(|s| {
                s.parse::<Override>()
                    .map_err(|e| eyre!("{}: tests[{i}].set: {e}", path.display()))
            })
            .collect::<eyre::Result<Vec<_>>>()?;
        dataflow::check_replay_overrides(&set)
            .wrap_err_with(|| format!("{}: tests[{i}].set", path.display()))?;
        cases.push(Case {
            recording: dir.join(&c.recording),
            config_given: c.config.is_some(),
            config: dir.join(c.config.unwrap_or_else(|| dataflow::DEFAULT_CONFIG.into())),
            expected: dir.join(
                c.expected
                    .unwrap_or_else(|| Path::new("expected").join(format!("{name}.jsonl"))),
            ),
            profile: profile(&format!("tests[{i}].tolerance"), &c.tolerance)?.unwrap_or(default),
            set,
            name,
        });
    }
    Ok(cases)
}

/// `--shard I/N`: the I-th of N (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("--shard {s}: expected I/N with 1 ≤ I ≤ N, e.g. 2/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl Shard {
    /// Recordings go round-robin in manifest order, so each shard's share is fixed by the
    /// manifest alone.
    #[must_use]
    pub fn takes(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// Replaces every recording's profile.
    pub tolerance: Option<Profile>,
    /// Applied after each recording's own `set`.
    pub set: Vec<Override>,
    pub shard: Option<Shard>,
    pub accept: bool,
    pub junit: Option<PathBuf>,
    /// Where the replays' outputs go.
    pub out_dir: PathBuf,
    pub infer_workers: Option<usize>,
    /// Differing frames each failure shows.
    pub frames: usize,
}

/// How one recording fared.
#[derive(Debug)]
enum Outcome {
    Passed(Report),
    Failed(Report),
    Accepted {
        frames: usize,
        changed: bool,
    },
    /// It could not be replayed or compared at all.
    Error(String),
    /// Not run: the run was cancelled before it.
    Skipped,
}

#[derive(Debug)]
struct CaseResult {
    case: Case,
    profile: Profile,
    output: PathBuf,
    seconds: f64,
    outcome: Outcome,
}

/// Runs the manifest's tests (this shard's); true when all passed.
pub fn run(manifest: &Path, opts: &TestOptions) -> eyre::Result<bool> {
    let cases = read_manifest(manifest)?;
    let total = cases.len();
    let cases: Vec<Case> = cases
        .into_iter()
        .enumerate()
        .filter(|(i, _)| opts.shard.is_none_or(|s| s.takes(*i)))
        .map(|(_, c)| c)
        .collect();
    if let Some(s) = opts.shard {
        println!(
            "shard {}/{}: {} of {total} recordings",
            s.index,
            s.count,
            cases.len()
        );
    }
    std::fs::create_dir_all(&opts.out_dir)
        .wrap_err_with(|| format!("creating {}", opts.out_dir.display()))?;
    let mut results = Vec::new();
    for case in cases {
        let profile = opts.tolerance.unwrap_or(case.profile);
        let output = opts.out_dir.join(format!("{}.jsonl", case.name));
        let start = Instant::now();
        let outcome = if crate::cancel::requested().is_some() {
            Outcome::Skipped
        } else {
            run_case(&case, profile, &output, opts).unwrap_or_else(|e| {
                let cancelled = crate::cancel::requested().map_or("", |_| "cancelled: ");
                Outcome::Error(format!("{cancelled}{e:#}"))
            })
        };
        let r = CaseResult {
            profile,
            output,
            seconds: start.elapsed().as_secs_f64(),
            outcome,
            case,
        };
        print_result(&r, opts.frames);
        results.push(r);
    }
    let t = Tally::of(&results);
    let skipped = if t.skipped > 0 {
        format!(", {} not run (cancelled)", t.skipped)
    } else {
        String::new()
    };
    if opts.accept {
        println!("{} accepted, {} errors{skipped}", t.accepted, t.errors);
    } else {
        println!(
            "{} passed, {} failed, {} errors{skipped}",
            t.passed, t.failed, t.errors
        );
    }
    if let Some(path) = &opts.junit {
        std::fs::write(path, junit(manifest, &results, opts.frames))
            .wrap_err_with(|| format!("writing {}", path.display()))?;
        println!("JUnit XML: {}", path.display());
    }
    if let Some(sig) = crate::cancel::requested() {
        return Err(crate::cancel::Cancelled(sig).into());
    }
    Ok(t.failed == 0 && t.errors == 0)
}

/// Recordings by outcome.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
    errors: usize,
    accepted: usize,
    skipped: usize,
}

impl Tally {
    fn of(results: &[CaseResult]) -> Self {
        let mut t = Self::default();
        for r in results {
            *match r.outcome {
                Outcome::Passed(_) => &mut t.passed,
                Outcome::Failed(_) => &mut t.failed,
                Outcome::Error(_) => &mut t.errors,
                Outcome::Accepted { .. } => &mut t.accepted,
                Outcome::Skipped => &mut t.skipped,
            } += 1;
        }
        t
    }
}

fn run_case(
    case: &Case,
    profile: Profile,
    output: &Path,
    opts: &TestOptions,
) -> eyre::Result<Outcome> {
    let mut set = case.set.clone();
    set.extend(opts.set.iter().cloned());
    if !case.config.is_file() {
        bail!(
            "{}: no such vigil.yml{}",
            case.config.display(),
            if case.config_given {
                ""
            } else {
                " (no `config:` given: the one beside the manifest)"
            }
        );
    }
    let run = dataflow::load_config(None, Some(&case.config), set)?;
    let replay = dataflow::ReplayOptions {
        infer_workers: opts
            .infer_workers
            .unwrap_or_else(|| dataflow::default_workers(&run.resolved.config)),
        ..dataflow::ReplayOptions::default()
    };
    dataflow::replay(&case.recording, output, &run, &replay)
        .wrap_err_with(|| format!("replaying {}", case.recording.display()))?;
    let actual = Output::read(output)?;
    if opts.accept {
        let before = std::fs::read(&case.expected).ok();
        let now =
            std::fs::read(output).wrap_err_with(|| format!("reading {}", output.display()))?;
        if let Some(dir) = case.expected.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&case.expected, &now)
            .wrap_err_with(|| format!("writing {}", case.expected.display()))?;
        return Ok(Outcome::Accepted {
            frames: actual.frames.len(),
            changed: before.as_deref() != Some(&now[..]),
        });
    }
    if !case.expected.is_file() {
        bail!(
            "no expectation at {}: run `vigil test --accept` to write it",
            case.expected.display()
        );
    }
    let expected = Output::read(&case.expected)?;
    let report = vigil_compare::compare(
        &expected,
        &actual,
        profile,
        &thresholds(&run.resolved.config),
    );
    Ok(if report.passed(profile) {
        Outcome::Passed(report)
    } else {
        Outcome::Failed(report)
    })
}

/// The confidence thresholds a run filtered with, to recognise near-threshold flips.
pub fn thresholds(c: &vigil_config::Config) -> Thresholds {
    // f32 settings, shown as written (0.3, not 0.30000001).
    let r = |v: f32| (f64::from(v) * 1e6).round() / 1e6;
    Thresholds {
        default: Some(r(c.postprocess.conf_threshold.get())),
        per_class: c
            .postprocess
            .classes
            .iter()
            .filter_map(|(k, o)| Some((*k, r(o.conf_threshold?.get()))))
            .collect(),
    }
}

fn print_result(r: &CaseResult, frames: usize) {
    let name = &r.case.name;
    match &r.outcome {
        Outcome::Passed(rep) => println!(
            "ok     {name} ({}, {:.1} s): {}",
            r.profile.name(),
            r.seconds,
            rep.summary()
        ),
        Outcome::Failed(rep) => {
            println!(
                "FAILED {name} ({}, {:.1} s): {}",
                r.profile.name(),
                r.seconds,
                rep.summary()
            );
            println!(
                "  expected {}\n  actual   {}",
                r.case.expected.display(),
                r.output.display()
            );
            for l in rep.describe_diffs(frames).lines() {
                println!("  {l}");
            }
        }
        Outcome::Accepted { frames, changed } => println!(
            "accepted {name}: {frames} frames → {}{}",
            r.case.expected.display(),
            if *changed { "" } else { " (unchanged)" }
        ),
        Outcome::Error(e) => println!("ERROR  {name}: {e}"),
        Outcome::Skipped => {}
    }
}

/// Text for XML (and HTML): the five special characters escaped, the characters XML 1.0
/// forbids replaced by a space.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters and U+FFFE/U+FFFF are not allowed in XML 1.0.
            c if ((c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t'))
                || matches!(c, '\u{FFFE}' | '\u{FFFF}') =>
            {
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML as CI systems read it: one test suite (the manifest), one test case per
/// recording; a failure carries the summary and the first differing frames.
fn junit(manifest: &Path, results: &[CaseResult], frames: usize) -> String {
    let suite = manifest
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("vigil-tests");
    let Tally {
        failed: failures,
        errors,
        skipped,
        ..
    } = Tally::of(results);
    let time: f64 = results.iter().map(|r| r.seconds).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"vigil test\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">",
        results.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        xml_escape(suite),
        results.len()
    );
    for r in results {
        let _ = write!(
            x,
            "    <testcase name=\"{}\" classname=\"vigil.{}\" file=\"{}\" time=\"{:.3}\">",
            xml_escape(&r.case.name),
            xml_escape(suite),
            xml_escape(&r.case.recording.display().to_string()),
            r.seconds
        );
        let out = format!(
            "recording {}\nexpected {}\nactual {}\ntolerance {}",
            r.case.recording.display(),
            r.case.expected.display(),
            r.output.display(),
            r.profile.name()
        );
        match &r.outcome {
            Outcome::Passed(rep) => {
                let _ = write!(
                    x,
                    "\n      <system-out>{}</system-out>\n    ",
                    xml_escape(&format!("{}\n{out}", rep.summary()))
                );
            }
            Outcome::Failed(rep) => {
                let _ = write!(
                    x,
                    "\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n      <system-out>{}</system-out>\n    ",
                    xml_escape(&rep.summary()),
                    xml_escape(&r.profile.name()),
                    xml_escape(&format!(
                        "{}\n{}",
                        rep.summary(),
                        rep.describe_diffs(frames)
                    )),
                    xml_escape(&out)
                );
            }
            Outcome::Accepted { frames, .. } => {
                let _ = write!(
                    x,
                    "\n      <system-out>{}</system-out>\n    ",
                    xml_escape(&format!("accepted: {frames} frames\n{out}"))
                );
            }
            Outcome::Skipped => {
                x.push_str("\n      <skipped message=\"cancelled before it ran\"/>\n    ");
            }
            Outcome::Error(e) => {
                let first = e.lines().next().unwrap_or_default();
                let _ = write!(
                    x,
                    "\n      <error message=\"{}\" type=\"replay\">{}</error>\n    ",
                    xml_escape(first),
                    xml_escape(e)
                );
            }
        }
        x.push_str("</testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// `vigil diff`: prints the comparison; true when it passes.
pub fn diff(
    expected: &Path,
    actual: &Path,
    profile: Profile,
    thresholds: &Thresholds,
    frames: usize,
) -> eyre::Result<bool> {
    let e = Output::read(expected)?;
    let a = Output::read(actual)?;
    let report = vigil_compare::compare(&e, &a, profile, thresholds);
    let passed = report.passed(profile);
    println!(
        "{} ({}): {}",
        if passed { "same" } else { "DIFFERENT" },
        profile.name(),
        report.summary()
    );
    print!("{}", report.describe_diffs(frames));
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_resolve_beside_it_with_defaults() {
        let text = "tolerance: cross-backend\ntests:\n  - recording: rec/a.mcap\n  - name: b\n    recording: b.mcap\n    config: cfg/b.yml\n    expected: exp/b.jsonl\n    tolerance: exact\n    set: [postprocess.conf_threshold=0.4]\n";
        let cases = parse_manifest(Path::new("ci/vigil-tests.yml"), text).expect("parses");
        assert_eq!(cases[0].name, "a");
        assert_eq!(cases[0].recording, Path::new("ci/rec/a.mcap"));
        assert_eq!(cases[0].config, Path::new("ci/vigil.yml"));
        assert_eq!(cases[0].expected, Path::new("ci/expected/a.jsonl"));
        assert_eq!(cases[0].profile, Profile::CrossBackend);
        assert_eq!(cases[1].config, Path::new("ci/cfg/b.yml"));
        assert_eq!(cases[1].profile, Profile::Exact);
        assert_eq!(cases[1].set.len(), 1);
    }

    #[test]
    fn manifest_errors_name_the_file_and_the_key() {
        let p = Path::new("m.yml");
        let err = |text: &str| format!("{:#}", parse_manifest(p, text).expect_err(text));
        let e = err("tests:\n  - recording: a.mcap\n    tolerence: exact\n");
        assert!(e.starts_with("m.yml:3: `tests[0].tolerence`"), "{e}");
        assert!(e.contains("tolerence"), "{e}");
        let e = err("tests:\n  - recording: a.mcap\n    tolerance: fuzzy\n");
        assert!(
            e.contains("tests[0].tolerance") && e.contains("fuzzy"),
            "{e}"
        );
        let e = err("tests: []\n");
        assert!(e.contains("no recording"), "{e}");
        let e = err("tests:\n  - recording: a.mcap\n  - recording: x/a.mcap\n");
        assert!(e.contains("`a` appears twice"), "{e}");
        let e = err("tests:\n  - recording: a.mcap\n    set: [preview.port=1]\n");
        assert!(e.contains("tests[0].set") && e.contains("--preview"), "{e}");
        let e = err("tests:\n  - recording: a.mcap\n    name: ../x\n");
        assert!(e.contains("names files"), "{e}");
    }

    #[test]
    fn shards_split_round_robin_and_cover_every_recording_once() {
        let shards: Vec<Shard> = ["1/3", "2/3", "3/3"]
            .iter()
            .map(|s| s.parse().expect("shard"))
            .collect();
        for i in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.takes(i)).count(), 1, "{i}");
        }
        assert!(shards[1].takes(1) && shards[1].takes(4));
        for bad in ["0/3", "4/3", "1/0", "2", "a/b"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn junit_escapes_and_counts() {
        let case = Case {
            name: "a<b>".into(),
            recording: "r.mcap".into(),
            config: "vigil.yml".into(),
            config_given: true,
            expected: "e.jsonl".into(),
            profile: Profile::Exact,
            set: Vec::new(),
        };
        let results = vec![
            CaseResult {
                case: case.clone(),
                profile: Profile::Exact,
                output: "o.jsonl".into(),
                seconds: 1.5,
                outcome: Outcome::Error("dataflow failed: \"x\" & y".into()),
            },
            CaseResult {
                case,
                profile: Profile::Exact,
                output: "o.jsonl".into(),
                seconds: 1.0,
                outcome: Outcome::Failed(Report::default()),
            },
        ];
        let x = junit(Path::new("vigil-tests.yml"), &results, 5);
        assert!(x.contains("tests=\"2\" failures=\"1\" errors=\"1\""), "{x}");
        assert!(x.contains("name=\"a&lt;b&gt;\""), "{x}");
        assert!(
            x.contains("message=\"dataflow failed: &quot;x&quot; &amp; y\""),
            "{x}"
        );
        assert_eq!(x.matches("<testcase ").count(), 2);
        assert_eq!(x.matches("</testcase>").count(), 2);
    }
}
