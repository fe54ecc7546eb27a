//! The download validator: hostile URLs and the near misses that pass.

use comfy_guard::download::{DownloadPolicy, DownloadRule, check_download};
use comfy_guard::path::{Extensions, PathRule};

#[test]
fn hostile_urls_are_rejected_by_their_rule() {
    let policy = DownloadPolicy::default();
    let cases: &[(&str, DownloadRule)] = &[
        ("not a url", DownloadRule::Malformed),
        ("http://huggingface.co/a/b.safetensors", DownloadRule::Scheme),
        ("file:///etc/passwd", DownloadRule::Scheme),
        ("ftp://huggingface.co/x.safetensors", DownloadRule::Scheme),
        ("https://user:pw@huggingface.co/x.safetensors", DownloadRule::UserInfo),
        ("https://huggingface.co@evil.com/x.safetensors", DownloadRule::UserInfo),
        ("https://127.0.0.1/x.safetensors", DownloadRule::IpLiteral),
        ("https://0x7f.1/x.safetensors", DownloadRule::IpLiteral),
        ("https://2130706433/x.safetensors", DownloadRule::IpLiteral),
        ("https://[::1]/x.safetensors", DownloadRule::IpLiteral),
        ("https://169.254.169.254/latest/meta-data", DownloadRule::IpLiteral),
        ("https://evil.com/x.safetensors", DownloadRule::Domain),
        ("https://huggingface.co.evil.com/x.safetensors", DownloadRule::Domain),
        ("https://evilhuggingface.co/x.safetensors", DownloadRule::Domain),
        ("https://localhost/x.safetensors", DownloadRule::Domain),
        ("https://hugginɡface.co/x.safetensors", DownloadRule::Domain),
        ("https://huggingface.co:8443/x.safetensors", DownloadRule::Port),
        ("https://huggingface.co/", DownloadRule::FileName),
        ("https://huggingface.co/x.exe", DownloadRule::FileName),
        (
            "https://huggingface.co/x.safetensors%2F..%2F..%2Fbashrc",
            DownloadRule::FileName,
        ),
        ("https://civitai.com/api/download/models/12345", DownloadRule::FileName),
    ];
    for (url, rule) in cases {
        match check_download(url, None, &policy) {
            Ok(ok) => panic!("{url} was accepted: {ok:?}"),
            Err(e) => {
                assert_eq!(e.rule, *rule, "{url}: {e}");
                assert!(e.to_string().contains(rule.id()), "{e}");
            }
        }
    }
    let e = check_download(
        "https://huggingface.co/x.safetensors",
        Some("../../.bashrc.safetensors"),
        &policy,
    )
    .unwrap_err();
    assert_eq!(e.path.map(|p| p.rule), Some(PathRule::Separator));
}

#[test]
fn allowed_downloads_pass_with_pickle_warnings() {
    let policy = DownloadPolicy::default();
    let ok = check_download(
        "https://huggingface.co/stabilityai/sdxl/resolve/main/sd_xl_base_1.0.safetensors?download=true",
        None,
        &policy,
    )
    .unwrap();
    assert_eq!(
        (ok.host.as_str(), ok.file_name.as_str()),
        ("huggingface.co", "sd_xl_base_1.0.safetensors")
    );
    assert!(ok.warnings.is_empty());
    let sub = check_download("https://CDN-LFS.HuggingFace.co./repo/x.gguf", None, &policy).unwrap();
    assert_eq!(sub.host, "cdn-lfs.huggingface.co");
    let civitai = check_download(
        "https://civitai.com/api/download/models/12345",
        Some("dreamshaper_8.safetensors"),
        &policy,
    )
    .unwrap();
    assert_eq!(civitai.file_name.as_str(), "dreamshaper_8.safetensors");
    let pickle = check_download("https://huggingface.co/x/model.ckpt", None, &policy).unwrap();
    assert!(pickle.warnings[0].contains("pickle"), "{:?}", pickle.warnings);
    assert_eq!(
        check_download("https://huggingface.co:443/x/a.safetensors", None, &policy)
            .unwrap()
            .url,
        "https://huggingface.co/x/a.safetensors"
    );
    // IDNA: a configured Unicode domain matches its punycode form.
    let idn = DownloadPolicy::new(["bücher.example"], Extensions::new([".safetensors"]));
    assert_eq!(idn.domains(), ["xn--bcher-kva.example"]);
    assert!(check_download("https://xn--bcher-kva.example/m.safetensors", None, &idn).is_ok());
    assert!(check_download("https://BÜCHER.example/m.safetensors", None, &idn).is_ok());
}
