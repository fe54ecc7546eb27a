//! The shared address rules: which IPs, names and URLs are refused, and
//! that ordinary public ones pass.

use std::net::IpAddr;

use comfy_addr::python::urlsplit;
use comfy_addr::{NameProblem, UrlProblem, is_public, name_problem, url_problem};
use proptest::prelude::*;

#[test]
fn addresses_that_are_not_public() {
    for private in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.100.100.200",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "240.0.0.1",
        "::1",
        "::",
        "fc00::1",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:100.100.100.200",
        "::ffff:0:10.0.0.1",
        "::10.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::7f00:1",
        "2002:7f00:1::",
        "2002:a9fe:a9fe::1",
        "2001:0:4136:e378::1",
        "2001:db8::1",
    ] {
        let ip: IpAddr = private.parse().expect("test address");
        assert!(!is_public(ip), "{private}");
    }
    for public in [
        "1.1.1.1",
        "8.8.8.8",
        "100.128.0.1",
        "2606:4700::1111",
        "::ffff:1.1.1.1",
        "64:ff9b::101:101",
        "2002:101:101::",
    ] {
        let ip: IpAddr = public.parse().expect("test address");
        assert!(is_public(ip), "{public}");
    }
}

#[test]
fn names_that_reach_the_local_machine_or_network() {
    for (name, why) in [
        ("localhost", NameProblem::Localhost),
        ("a.LOCALHOST", NameProblem::Localhost),
        ("example.com.", NameProblem::TrailingDot),
        ("localtest.me", NameProblem::LoopbackByDesign),
        ("x.localtest.me", NameProblem::LoopbackByDesign),
        ("lvh.me", NameProblem::LoopbackByDesign),
        ("10.0.0.1.nip.io", NameProblem::LoopbackByDesign),
        ("169-254-169-254.sslip.io", NameProblem::LoopbackByDesign),
        ("metadata.google.internal", NameProblem::Metadata),
        ("redis", NameProblem::LocalOnly),
        ("printer.local", NameProblem::LocalOnly),
        ("nas.home.arpa", NameProblem::LocalOnly),
    ] {
        assert_eq!(name_problem(name), Some(why), "{name}");
    }
    for ok in ["example.com", "huggingface.co", "snip.io", "civitai.com"] {
        assert_eq!(name_problem(ok), None, "{ok}");
    }
}

/// What a refused URL's problem must match.
type Expect = fn(&UrlProblem) -> bool;

#[test]
fn urls_a_node_must_not_fetch() {
    let cases: &[(&str, Expect)] = &[
        ("http://127.0.0.1:8188/prompt", |p| matches!(p, UrlProblem::Address(_))),
        ("http://[::ffff:169.254.169.254]/", |p| {
            matches!(p, UrlProblem::Address(_))
        }),
        ("http://[::ffff:a9fe:a9fe]/", |p| matches!(p, UrlProblem::Address(_))),
        ("http://[64:ff9b::a9fe:a9fe]/", |p| matches!(p, UrlProblem::Address(_))),
        ("http://100.100.100.200/latest/meta-data", |p| {
            matches!(p, UrlProblem::Address(_))
        }),
        ("http://100.64.1.1/", |p| matches!(p, UrlProblem::Address(_))),
        // Number forms WHATWG and glibc's inet_aton both read as 127.0.0.1.
        ("http://2130706433/", |p| {
            matches!(p, UrlProblem::Address(_) | UrlProblem::Disagree { .. })
        }),
        ("http://0x7f.1/", |p| {
            matches!(p, UrlProblem::Address(_) | UrlProblem::Disagree { .. })
        }),
        ("http://metadata.google.internal/computeMetadata/v1/", |p| {
            matches!(p, UrlProblem::Name(_, NameProblem::Metadata))
        }),
        ("https://localtest.me/", |p| {
            matches!(p, UrlProblem::Name(_, NameProblem::LoopbackByDesign))
        }),
        ("https://127.0.0.1.nip.io/x.png", |p| {
            matches!(p, UrlProblem::Name(_, NameProblem::LoopbackByDesign))
        }),
        ("https://app.lvh.me/", |p| {
            matches!(p, UrlProblem::Name(_, NameProblem::LoopbackByDesign))
        }),
        ("https://example.com./x.png", |p| {
            matches!(p, UrlProblem::Name(_, NameProblem::TrailingDot))
        }),
        ("http://localhost./", |p| {
            matches!(p, UrlProblem::Name(_, NameProblem::TrailingDot))
        }),
        ("169.254.169.254/latest/meta-data", |p| *p == UrlProblem::NoScheme),
        ("//169.254.169.254/", |p| *p == UrlProblem::NoScheme),
        (
            "file:///etc/passwd",
            |p| matches!(p, UrlProblem::Scheme(s) if s == "file"),
        ),
        ("gopher://127.0.0.1:6379/_", |p| matches!(p, UrlProblem::Scheme(_))),
        (r"http://evil\@169.254.169.254/", |p| {
            matches!(p, UrlProblem::Disagree { .. })
        }),
        (r"http://example.com\@127.0.0.1/", |p| {
            matches!(p, UrlProblem::Disagree { .. })
        }),
        ("http:example.com/x", |p| matches!(p, UrlProblem::Disagree { .. })),
        ("https://user:pw@example.com/", |p| *p == UrlProblem::UserInfo),
        ("http://%6c%6f%63%61%6c%68%6f%73%74/", |p| {
            matches!(
                p,
                UrlProblem::Name(_, NameProblem::Localhost) | UrlProblem::Disagree { .. }
            )
        }),
        ("http://ｌｏｃａｌｈｏｓｔ/", |p| {
            matches!(p, UrlProblem::Name(_, NameProblem::Localhost))
        }),
    ];
    for (url, expected) in cases {
        let got = url_problem(url);
        assert!(got.as_ref().is_some_and(expected), "{url}: {got:?}");
    }
    for ok in [
        "https://example.com/cat.png",
        "https://huggingface.co/org/model/resolve/main/x.safetensors?download=true",
        "http://1.1.1.1/",
        "https://[2606:4700::1111]/",
        "HTTPS://Example.COM/",
    ] {
        assert_eq!(url_problem(ok), None, "{ok}");
    }
}

#[test]
fn problems_are_worded_for_people() {
    let p = url_problem(r"http://evil\@169.254.169.254/").expect("refused");
    assert_eq!(
        p.to_string(),
        "URL parsers disagree on the host: the WHATWG standard reads `evil`, Python's urllib reads `169.254.169.254`"
    );
}

proptest! {
    // Never panics, whatever the text.
    #[test]
    fn any_text_is_judged_without_panicking(s in "\\PC{0,64}") {
        let _ = url_problem(&s);
        let _ = urlsplit(&s).map(|x| x.hostname());
    }

    // A host behind user info and before any path delimiter is what Python
    // reads, whatever the user info holds (no `/?#`).
    #[test]
    fn python_takes_the_host_after_the_last_at(user in "[a-z@\\\\:]{0,12}", host in "[a-z]{1,10}\\.[a-z]{2,4}", tail in "[/?#][ -~]{0,20}") {
        let split = urlsplit(&format!("http://{user}@{host}{tail}")).expect("no brackets");
        prop_assert_eq!(split.hostname(), Some(host));
    }

    // Any userinfo or backslash trick in front of a private address is refused.
    #[test]
    fn a_private_host_is_refused_however_it_is_dressed(pre in "[a-z\\\\@.:]{0,10}", port in proptest::option::of(1u16..)) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let url = format!("http://{pre}169.254.169.254{port}/latest");
        prop_assert!(url_problem(&url).is_some(), "{}", url);
    }
}
