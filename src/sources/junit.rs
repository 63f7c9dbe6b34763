//! A small, forgiving JUnit XML reader: the `<testcase>` elements of any runner that writes the
//! format (pytest, cargo-nextest, go-junit-report, jest-junit, …), with their time and whether a
//! `<failure>`, `<error>` or `<skipped>` child says how they ended. Nothing else of XML matters
//! here, so no XML crate: comments, CDATA, processing instructions and a doctype are skipped,
//! the five entities and numeric references are decoded, and a file cut short yields the test
//! cases that were complete, with `complete = false`.

use crate::diagnose::per_test::{TestCase, TestOutcome};

/// What a JUnit XML file holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JunitReport {
    /// Every complete `<testcase>`, in file order.
    pub cases: Vec<TestCase>,
    /// Whether the document ended properly (every element closed).
    pub complete: bool,
}

/// Reads the test cases of `xml`.
pub fn parse(xml: &str) -> JunitReport {
    let mut report = JunitReport::default();
    let mut open: Vec<String> = Vec::new();
    let mut current: Option<TestCase> = None;
    let mut seen_root = false;
    let mut rest = xml;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        let skipped = [("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>"), ("<!", ">")]
            .iter()
            .find(|(start, _)| rest.starts_with(start))
            .map(|(_, end)| rest.find(end).map(|i| i + end.len()));
        if let Some(skip) = skipped {
            match skip {
                Some(n) => {
                    rest = &rest[n..];
                    continue;
                }
                None => return report,
            }
        }
        let Some(tag) = Tag::read(rest) else { return report };
        rest = &rest[tag.len..];
        if tag.closing {
            if let Some(at) = open.iter().rposition(|n| *n == tag.name) {
                open.truncate(at);
            }
            if tag.name == "testcase" {
                report.cases.extend(current.take());
            }
        } else {
            seen_root = true;
            match tag.name.as_str() {
                "testcase" => {
                    let case = test_case(&tag);
                    if tag.empty {
                        report.cases.push(case);
                    } else {
                        current = Some(case);
                    }
                }
                "failure" | "error" | "skipped" => {
                    if let Some(case) = current.as_mut() {
                        let outcome = match tag.name.as_str() {
                            "failure" => TestOutcome::Failed,
                            "error" => TestOutcome::Error,
                            _ => TestOutcome::Skipped,
                        };
                        // A failure outranks a skip; the first failure's message is kept.
                        if !case.outcome.is_failure() {
                            case.outcome = outcome;
                            case.message = tag.attribute("message").filter(|m| !m.is_empty()).map(first_line);
                        }
                    }
                }
                _ => {}
            }
            if !tag.empty {
                open.push(tag.name);
            }
        }
    }
    report.complete = seen_root && open.is_empty();
    report
}

fn test_case(tag: &Tag) -> TestCase {
    let name = tag.attribute("name").unwrap_or_default();
    let class = tag.attribute("classname").unwrap_or_default();
    let nodeid = match (class.is_empty(), name.is_empty()) {
        (true, _) => name,
        (false, true) => class,
        (false, false) => format!("{class}::{name}"),
    };
    let seconds: f64 = tag
        .attribute("time")
        .and_then(|t| t.replace(',', "").trim().parse().ok())
        .filter(|t: &f64| t.is_finite() && *t >= 0.0)
        .unwrap_or(0.0);
    TestCase {
        nodeid,
        file: tag.attribute("file").filter(|f| !f.is_empty()),
        outcome: TestOutcome::Passed,
        duration_ms: seconds * 1000.0,
        message: None,
        finished_ms: None,
    }
}

fn first_line(text: String) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    line.chars().take(300).collect()
}

/// One start or end tag.
struct Tag {
    name: String,
    closing: bool,
    /// `<x/>`.
    empty: bool,
    attributes: Vec<(String, String)>,
    /// Bytes of the tag in the text.
    len: usize,
}

impl Tag {
    /// The tag at the start of `text` (which starts with `<`); `None` if it is cut short.
    fn read(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let mut i = 1;
        let closing = bytes.get(1) == Some(&b'/');
        if closing {
            i += 1;
        }
        let name_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' && bytes[i] != b'/' {
            i += 1;
        }
        let name = text.get(name_start..i)?.to_string();
        let mut attributes = Vec::new();
        loop {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i)? {
                b'>' => {
                    return Some(Self {
                        name,
                        closing,
                        empty: false,
                        attributes,
                        len: i + 1,
                    })
                }
                b'/' if bytes.get(i + 1) == Some(&b'>') => {
                    return Some(Self {
                        name,
                        closing,
                        empty: true,
                        attributes,
                        len: i + 2,
                    })
                }
                _ => {}
            }
            let key_start = i;
            while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b'>' && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let key = text.get(key_start..i)?.to_string();
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if bytes.get(i) != Some(&b'=') {
                // An attribute without a value (not XML, but harmless).
                if key.is_empty() {
                    i += 1;
                }
                continue;
            }
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let quote = *bytes.get(i)?;
            if quote != b'"' && quote != b'\'' {
                continue;
            }
            let value_start = i + 1;
            let value_len = text.get(value_start..)?.find(quote as char)?;
            let value = text.get(value_start..value_start + value_len)?;
            attributes.push((key, decode(value)));
            i = value_start + value_len + 1;
        }
    }

    fn attribute(&self, key: &str) -> Option<String> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
}

/// Decodes XML's entities and character references; anything else is kept as written.
fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4" time="0.4">
<!-- a comment with <testcase name="fake"/> inside -->
<testcase classname="tests.test_a" name="test_ok" time="0.120" />
<testcase classname="tests.test_a" name="test_bad[a&lt;b]" time="0.030"><failure message="assert 1 == 2&#10;more">trace</failure></testcase>
<testcase classname="tests.test_a" name="test_skip" time="0"><skipped type="pytest.skip" message="no gpu">skip</skipped></testcase>
<testcase classname="" name="tests.test_broken" time="0.000"><error message="collection failure"><![CDATA[SyntaxError: </testcase> in here]]></error></testcase>
</testsuite></testsuites>"#;

    #[test]
    fn reads_outcomes_times_and_messages() {
        let report = parse(PYTEST);
        assert!(report.complete);
        let got: Vec<(&str, TestOutcome, f64)> = report
            .cases
            .iter()
            .map(|c| (c.nodeid.as_str(), c.outcome, c.duration_ms))
            .collect();
        assert_eq!(
            got,
            [
                ("tests.test_a::test_ok", TestOutcome::Passed, 120.0),
                ("tests.test_a::test_bad[a<b]", TestOutcome::Failed, 30.0),
                ("tests.test_a::test_skip", TestOutcome::Skipped, 0.0),
                ("tests.test_broken", TestOutcome::Error, 0.0),
            ]
        );
        assert_eq!(report.cases[1].message.as_deref(), Some("assert 1 == 2"));
    }

    #[test]
    fn a_file_cut_short_keeps_the_complete_cases() {
        for cut in [PYTEST.len() / 2, PYTEST.find("test_skip").unwrap_or(0), 3, 0] {
            let report = parse(&PYTEST[..cut]);
            assert!(!report.complete, "cut at {cut}");
            assert!(report.cases.len() <= 3, "cut at {cut}: {:?}", report.cases);
        }
        assert_eq!(parse(&PYTEST[..PYTEST.find("test_skip").unwrap_or(0)]).cases.len(), 2);
    }

    #[test]
    fn other_runners_and_odd_input() {
        let nextest = r#"<testsuites name="nextest-run" tests="1"><testsuite name="looptop"><testcase name="a::b" classname="looptop" timestamp="2024" time="1.5"></testcase></testsuite></testsuites>"#;
        let report = parse(nextest);
        assert_eq!(report.cases[0].nodeid, "looptop::a::b");
        assert_eq!(report.cases[0].duration_ms, 1500.0);
        assert!(report.complete);
        for junk in [
            "",
            "not xml at all",
            "<<<>>>",
            "<testcase name='x' time='abc'",
            "&&;<a b=>",
        ] {
            let report = parse(junk);
            assert!(!report.complete || report.cases.is_empty(), "{junk:?}");
        }
        assert_eq!(decode("a &amp;&#x41;&#66;&bogus; &"), "a &AB&bogus; &");
    }
}
