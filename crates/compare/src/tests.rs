// Compiled only for tests (`#[cfg(test)] mod tests;` in lib.rs): `expect` is how a test
// fails, naming what it expected.
use super::*;
use proptest::prelude::*;

fn det(class: u32, score: f64, b: [f64; 4]) -> String {
    format!(
        r#"{{"class":{class},"label":"c{class}","score":{score},"box":[{},{},{},{}]}}"#,
        b[0], b[1], b[2], b[3]
    )
}

fn line(seq: u64, status: &str, dets: &[String], tracks: &[(u64, u32, [f64; 4])]) -> String {
    let tracks: Vec<String> = tracks
        .iter()
        .map(|(id, c, b)| {
            format!(
                r#"{{"id":{id},"class":{c},"box":[{},{},{},{}]}}"#,
                b[0], b[1], b[2], b[3]
            )
        })
        .collect();
    format!(
        r#"{{"seq":{seq},"status":"{status}","detections":[{}],"tracks":[{}]}}"#,
        dets.join(","),
        tracks.join(",")
    )
}

fn out(lines: &[String]) -> Output {
    Output::parse(Path::new("t.jsonl"), &lines.join("\n")).expect("parses")
}

const A: [f64; 4] = [10.0, 10.0, 110.0, 210.0];
const B: [f64; 4] = [300.0, 50.0, 360.0, 170.0];

fn th(t: f64) -> Thresholds {
    Thresholds {
        default: Some(t),
        per_class: BTreeMap::new(),
    }
}

#[test]
fn identical_outputs_pass_every_profile() {
    let lines = vec![
        line(
            0,
            "inferred",
            &[det(0, 0.9, A), det(2, 0.5, B)],
            &[(1, 0, A)],
        ),
        line(1, "interval", &[], &[(1, 0, A)]),
    ];
    let (e, a) = (out(&lines), out(&lines));
    for p in [Profile::Exact, Profile::CrossBackend] {
        let r = compare(&e, &a, p, &th(0.25));
        assert!(r.passed(p), "{p:?}: {}", r.summary());
        assert_eq!((r.identical_lines, r.matched, r.diffs.len()), (2, 2, 0));
    }
}

#[test]
fn a_small_shift_fails_exact_and_passes_cross_backend() {
    let e = out(&[line(0, "inferred", &[det(0, 0.9, A)], &[])]);
    let a = out(&[line(
        0,
        "inferred",
        &[det(0, 0.88, [10.5, 10.0, 110.0, 211.0])],
        &[],
    )]);
    let r = compare(&e, &a, Profile::Exact, &th(0.25));
    assert!(!r.passed(Profile::Exact));
    assert_eq!((r.moved, r.matched), (1, 0));
    assert!(
        r.describe_diffs(5)
            .contains("~ moved    c0 0.9000 → 0.8800"),
        "{}",
        r.describe_diffs(5)
    );
    let r = compare(&e, &a, Profile::CrossBackend, &th(0.25));
    assert!(r.passed(Profile::CrossBackend), "{}", r.summary());
    assert_eq!((r.moved, r.matched), (0, 1));
    // Within tolerance, so no frame to show (only exact lists every differing line).
    assert!(r.diffs.is_empty(), "{}", r.describe_diffs(5));
    // … but not a score change beyond 0.05.
    let far = out(&[line(0, "inferred", &[det(0, 0.8, A)], &[])]);
    let r = compare(&e, &far, Profile::CrossBackend, &th(0.25));
    assert_eq!(r.moved, 1);
    assert!(!r.passed(Profile::CrossBackend));
}

#[test]
fn missing_extra_and_near_threshold_flips_are_told_apart() {
    let e = out(&[line(0, "inferred", &[det(0, 0.9, A), det(1, 0.27, B)], &[])]);
    let a = out(&[line(0, "inferred", &[det(3, 0.6, B)], &[])]);
    let r = compare(&e, &a, Profile::CrossBackend, &th(0.25));
    // A: missing (0.9 is far from 0.25); B class 1 at 0.27: a flip; B class 3: extra.
    assert_eq!((r.missing, r.flips, r.extra), (1, 1, 1), "{}", r.summary());
    assert!(!r.passed(Profile::CrossBackend));
    let text = r.describe_diffs(5);
    assert!(
        text.contains("- missing  c0 0.90 at [10.0, 10.0, 110.0, 210.0]"),
        "{text}"
    );
    assert!(text.contains("+ extra    c3 0.60"), "{text}");
    assert!(
        text.contains("≈ flip     c1 0.2700 (threshold 0.25) only in the expected"),
        "{text}"
    );
    // Listed first: the frame beyond the tolerance, before a frame with a flip only.
    let two = compare(
        &out(&[
            line(0, "inferred", &[det(1, 0.27, B)], &[]),
            line(1, "inferred", &[det(0, 0.9, A)], &[]),
        ]),
        &out(&[line(0, "inferred", &[], &[]), line(1, "inferred", &[], &[])]),
        Profile::CrossBackend,
        &th(0.25),
    );
    let text = two.describe_diffs(1);
    assert!(text.starts_with("frame 1:"), "{text}");
    assert!(text.contains("1 beyond the tolerance in all"), "{text}");
    // Flips alone pass the cross-backend profile.
    let a = out(&[line(0, "inferred", &[det(0, 0.9, A)], &[])]);
    let r = compare(&e, &a, Profile::CrossBackend, &th(0.25));
    assert_eq!((r.flips, r.missing), (1, 0));
    assert!(r.passed(Profile::CrossBackend));
    // With no threshold known, nothing is a flip.
    let r = compare(&e, &a, Profile::CrossBackend, &Thresholds::default());
    assert_eq!((r.flips, r.missing), (0, 1));
    // A per-class threshold wins over the default.
    let per = Thresholds {
        default: Some(0.25),
        per_class: BTreeMap::from([(1, 0.5)]),
    };
    let r = compare(&e, &a, Profile::CrossBackend, &per);
    assert_eq!((r.flips, r.missing), (0, 1));
}

#[test]
fn status_changes_and_lines_on_one_side_fail() {
    let e = out(&[line(0, "inferred", &[], &[]), line(1, "inferred", &[], &[])]);
    let a = out(&[line(0, "missing", &[], &[]), line(2, "inferred", &[], &[])]);
    let r = compare(&e, &a, Profile::CrossBackend, &th(0.25));
    assert_eq!(
        (r.status_changes, r.lines_missing, r.lines_extra),
        (1, 1, 1)
    );
    assert!(!r.passed(Profile::CrossBackend));
    let text = r.describe_diffs(10);
    assert!(
        text.contains("frame 0: status inferred → missing"),
        "{text}"
    );
    assert!(
        text.contains("frame 1: line missing from the actual output"),
        "{text}"
    );
    assert!(
        text.contains("frame 2: line not in the expected output"),
        "{text}"
    );
    // Nothing to compare never passes.
    let empty = Output::default();
    assert!(!compare(&empty, &empty, Profile::Exact, &th(0.25)).passed(Profile::Exact));
}

#[test]
fn renumbered_tracks_are_not_changes_but_a_swap_is() {
    let e = out(&[
        line(0, "inferred", &[], &[(1, 0, A), (2, 0, B)]),
        line(1, "inferred", &[], &[(1, 0, A), (2, 0, B)]),
    ]);
    // Every id shifted by 10 (an extra track earlier would do that): the same tracks.
    let shifted = out(&[
        line(0, "inferred", &[], &[(11, 0, A), (12, 0, B)]),
        line(1, "inferred", &[], &[(11, 0, A), (12, 0, B)]),
    ]);
    let r = compare(&e, &shifted, Profile::CrossBackend, &th(0.25));
    assert_eq!(r.track_id_changes, 0);
    assert!(r.passed(Profile::CrossBackend));
    assert!(!r.passed(Profile::Exact));
    // The two objects swap ids on frame 1.
    let swapped = out(&[
        line(0, "inferred", &[], &[(1, 0, A), (2, 0, B)]),
        line(1, "inferred", &[], &[(2, 0, A), (1, 0, B)]),
    ]);
    let r = compare(&e, &swapped, Profile::CrossBackend, &th(0.25));
    assert_eq!(r.track_id_changes, 2);
    assert!(!r.passed(Profile::CrossBackend));
    assert!(
        r.describe_diffs(5)
            .contains("# track    expected id 1 is now actual id 2 (was 1)"),
        "{}",
        r.describe_diffs(5)
    );
}

#[test]
fn differences_tolerance_cannot_see_are_shown_as_lines() {
    let e = out(&[line(0, "busy", &[], &[(1, 0, A)])]);
    let a = out(&[r#"{"seq":0,"status":"busy","detections":[],"tracks":[{"id":1,"class":0,"box":[10.0,10.0,110.0,210.0],"coasting":true}]}"#.to_owned()]);
    let r = compare(&e, &a, Profile::Exact, &th(0.25));
    assert!(!r.passed(Profile::Exact));
    assert!(
        r.describe_diffs(5).contains("actual:   {\"seq\":0"),
        "{}",
        r.describe_diffs(5)
    );
}

#[test]
fn bad_lines_and_duplicates_are_errors_naming_file_and_line() {
    let err = Output::parse(
        Path::new("x.jsonl"),
        "{\"seq\":0,\"status\":\"inferred\"}\nnope",
    )
    .expect_err("bad line");
    assert!(err.to_string().starts_with("x.jsonl:2: "), "{err}");
    let dup = "{\"seq\":3,\"status\":\"busy\"}\n{\"seq\":3,\"status\":\"busy\"}";
    let err = Output::parse(Path::new("x.jsonl"), dup).expect_err("duplicate");
    assert!(
        err.to_string()
            .contains("x.jsonl:2: frame seq 3 appears twice"),
        "{err}"
    );
}

#[test]
fn profiles_parse_by_name_or_bounds() {
    assert_eq!("exact".parse::<Profile>(), Ok(Profile::Exact));
    assert_eq!(
        "cross-backend".parse::<Profile>(),
        Ok(Profile::CrossBackend)
    );
    assert_eq!(
        "iou=0.8,score=0.1".parse::<Profile>(),
        Ok(Profile::Custom {
            iou: 0.8,
            score: 0.1
        })
    );
    for bad in [
        "fuzzy",
        "iou=2,score=0.1",
        "iou=0.8",
        "iou=0.8,depth=1",
        "iou=0.3,score=0.1",
        "iou=0.8,score=0.1,iou=0.9",
    ] {
        let err = bad.parse::<Profile>().expect_err(bad);
        assert!(err.contains(bad), "{err}");
    }
}

#[test]
fn a_lost_track_fails_unless_it_follows_a_flip() {
    // Expected: one object tracked on both frames. Actual: the detections agree, the track is
    // gone (a tracker regression).
    let e = out(&[
        line(0, "inferred", &[det(0, 0.9, A)], &[(1, 0, A)]),
        line(1, "inferred", &[det(0, 0.9, A)], &[(1, 0, A)]),
    ]);
    let a = out(&[
        line(0, "inferred", &[det(0, 0.9, A)], &[]),
        line(1, "inferred", &[det(0, 0.9, A)], &[]),
    ]);
    let r = compare(&e, &a, Profile::CrossBackend, &th(0.25));
    assert_eq!((r.tracks_missing, r.tracks_extra), (2, 0));
    assert!(!r.passed(Profile::CrossBackend));
    assert!(
        r.describe_diffs(5)
            .contains("# track    #1 (class 0) only in the expected output")
    );
    // A box kept at 0.27 on one side only starts a track there, which coasts on after it: a
    // consequence of the flip, not a tracker difference.
    let e = out(&[
        line(0, "inferred", &[det(1, 0.27, B)], &[(1, 1, B)]),
        line(1, "inferred", &[], &[(1, 1, B)]),
    ]);
    let a = out(&[line(0, "inferred", &[], &[]), line(1, "inferred", &[], &[])]);
    let r = compare(&e, &a, Profile::CrossBackend, &th(0.25));
    assert_eq!((r.flips, r.tracks_missing), (1, 0), "{}", r.summary());
    assert!(r.passed(Profile::CrossBackend));
}

#[test]
fn the_flip_window_stays_narrow_whatever_the_score_bound() {
    // A loose score bound must not turn every missing box into an allowed flip.
    let loose = Profile::Custom {
        iou: 0.9,
        score: 0.5,
    };
    assert!((loose.flip_window() - FLIP_WINDOW).abs() < 1e-12);
    let e = out(&[line(0, "inferred", &[det(0, 0.6, A)], &[])]);
    let a = out(&[line(0, "inferred", &[], &[])]);
    let r = compare(&e, &a, loose, &th(0.25));
    assert_eq!((r.flips, r.missing), (0, 1));
    assert!(!r.passed(loose));
    assert!(Profile::Exact.flip_window() == 0.0);
}

#[test]
fn labels_are_the_first_each_class_carries() {
    let o = out(&[line(0, "inferred", &[det(3, 0.9, A), det(0, 0.5, B)], &[])]);
    assert_eq!(
        o.labels().into_iter().collect::<Vec<_>>(),
        [(0, "c0".to_owned()), (3, "c3".to_owned())]
    );
}

fn arb_box() -> impl Strategy<Value = [f64; 4]> {
    (0.0..500.0f64, 0.0..500.0f64, 5.0..200.0f64, 5.0..200.0f64)
        .prop_map(|(x, y, w, h)| [x, y, x + w, y + h])
}

fn arb_frame(seq: u64) -> impl Strategy<Value = String> {
    prop::collection::vec((0u32..3, 0.25..1.0f64, arb_box()), 0..6).prop_map(move |ds| {
        let dets: Vec<String> = ds.iter().map(|(c, s, b)| det(*c, *s, *b)).collect();
        line(seq, "inferred", &dets, &[])
    })
}

proptest! {
    /// An output compared with itself is identical under every profile; compared the other
    /// way round, missing and extra swap.
    #[test]
    fn comparison_is_reflexive_and_symmetric(a in prop::collection::vec(arb_frame(0), 1..2),
                                             b in prop::collection::vec(arb_frame(0), 1..2)) {
        let (oa, ob) = (out(&a), out(&b));
        let same = compare(&oa, &oa, Profile::Exact, &th(0.25));
        prop_assert!(same.passed(Profile::Exact));
        prop_assert_eq!(same.matched, same.detections_expected);
        let ab = compare(&oa, &ob, Profile::CrossBackend, &Thresholds::default());
        let ba = compare(&ob, &oa, Profile::CrossBackend, &Thresholds::default());
        prop_assert_eq!((ab.missing, ab.extra, ab.matched, ab.moved), (ba.extra, ba.missing, ba.matched, ba.moved));
        // Every detection is accounted for exactly once.
        prop_assert_eq!(ab.detections_expected, ab.matched + ab.moved + ab.missing);
        prop_assert_eq!(ab.detections_actual, ab.matched + ab.moved + ab.extra);
    }
}
