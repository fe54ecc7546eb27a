//! The download validator: a model URL is accepted only when it is
//! `https`, on an allowed domain (exactly or a subdomain, compared after
//! IDNA normalisation), names no user, no IP literal and no unusual port,
//! and yields a safe file name with an allowed model extension. Pickle
//! formats (`.ckpt`, `.pt`, `.pth`, `.bin`, ...) can run code when loaded:
//! they pass only with a warning.
//!
//! Why here: the server, and anyone embedding this crate, decides what may
//! be fetched onto a GPU machine from this one function.

use std::fmt;

use url::{Host, Url};

use crate::path::{Extensions, PathError, SafeFileName, SafeName};

/// Extensions of formats that unpickle (and so can run code) on load.
pub const PICKLE_EXTENSIONS: &[&str] = &[".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle"];

/// Folders ComfyUI's `/models` lists that hold no weights: code
/// (`custom_nodes`, imported at ComfyUI's next start), configuration
/// (`configs`), and the user, input, output and temp trees some setups
/// register. The one place this list is kept; compared case-insensitively.
pub const NON_WEIGHT_FOLDERS: &[&str] = &[
    "custom_nodes",
    "configs",
    "user",
    "input",
    "output",
    "temp",
    "workflows",
    "web",
    "extensions",
];

/// Checks that `folder` is a weight folder: a [`SafeName`], one of the
/// folders the server lists (`listed`, its `/models` answer), and not on
/// [`NON_WEIGHT_FOLDERS`]. Downloads and the `comfyui://models/{folder}`
/// resource take only such folders.
///
/// # Errors
/// [`DownloadError`] with [`DownloadRule::Folder`] naming what was wrong.
///
/// ```
/// use comfy_guard::download::{DownloadRule, weight_folder};
/// let listed = ["checkpoints".to_owned(), "custom_nodes".to_owned()];
/// assert!(weight_folder("checkpoints", &listed).is_ok());
/// assert_eq!(weight_folder("custom_nodes", &listed).unwrap_err().rule, DownloadRule::Folder);
/// assert_eq!(weight_folder("loras", &listed).unwrap_err().rule, DownloadRule::Folder);
/// ```
pub fn weight_folder(folder: &str, listed: &[String]) -> Result<SafeName, DownloadError> {
    let name = SafeName::parse(folder).map_err(|e| DownloadError {
        rule: DownloadRule::Folder,
        detail: format!("`folder`: {e}"),
        path: Some(e),
    })?;
    if NON_WEIGHT_FOLDERS.iter().any(|n| n.eq_ignore_ascii_case(folder)) {
        return Err(reject(
            DownloadRule::Folder,
            format!(
                "`{folder}` holds no model weights (code or configuration); choose a weight folder such as checkpoints or loras"
            ),
        ));
    }
    if !listed.iter().any(|l| l == folder) {
        return Err(reject(
            DownloadRule::Folder,
            format!("ComfyUI lists no model folder `{folder}` (comfyui_list_model_folders lists them)"),
        ));
    }
    Ok(name)
}

/// What may be downloaded, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadPolicy {
    domains: Vec<String>,
    extensions: Extensions,
}

impl Default for DownloadPolicy {
    /// `huggingface.co` and `civitai.com`; `.safetensors`, `.gguf` and the
    /// pickle formats `.ckpt`, `.pt`, `.pth`, `.bin` (those with a warning).
    fn default() -> Self {
        Self::new(
            ["huggingface.co", "civitai.com"],
            Extensions::new([".safetensors", ".gguf", ".ckpt", ".pt", ".pth", ".bin"]),
        )
    }
}

impl DownloadPolicy {
    /// A policy from the configured domain list and model extensions.
    /// Domains are IDNA-normalised; ones that are not valid host names are
    /// dropped (they could never match).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(domains: I, extensions: Extensions) -> Self {
        let domains = domains
            .into_iter()
            .filter_map(|d| match Host::parse(d.as_ref().trim().trim_end_matches('.')) {
                Ok(Host::Domain(d)) => Some(d),
                _ => None,
            })
            .collect();
        Self { domains, extensions }
    }

    /// The normalised allowed domains.
    #[must_use]
    pub fn domains(&self) -> &[String] {
        &self.domains
    }
}

/// The rule a rejected download broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DownloadRule {
    /// Not a URL.
    Malformed,
    /// Not `https`.
    Scheme,
    /// A user name or password in the URL.
    UserInfo,
    /// An IP address instead of a host name.
    IpLiteral,
    /// A host not on the allowed-domain list.
    Domain,
    /// A port other than 443.
    Port,
    /// No usable file name, or one the path rules refuse.
    FileName,
    /// A folder that is not one of the server's weight folders.
    Folder,
}

impl DownloadRule {
    /// The rule's stable id (`download.domain`, ...).
    #[must_use]
    pub fn id(self) -> &'static str {
        match self {
            Self::Malformed => "download.malformed",
            Self::Scheme => "download.scheme",
            Self::UserInfo => "download.user-info",
            Self::IpLiteral => "download.ip-literal",
            Self::Domain => "download.domain",
            Self::Port => "download.port",
            Self::FileName => "download.file-name",
            Self::Folder => "download.folder",
        }
    }
}

impl fmt::Display for DownloadRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A rejected download.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("download rejected ({rule}): {detail}")]
pub struct DownloadError {
    /// The rule it broke.
    pub rule: DownloadRule,
    /// What exactly was wrong.
    pub detail: String,
    /// The path error behind a `FileName` rejection.
    pub path: Option<PathError>,
}

fn reject(rule: DownloadRule, detail: impl Into<String>) -> DownloadError {
    DownloadError {
        rule,
        detail: detail.into(),
        path: None,
    }
}

/// An accepted download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeDownload {
    /// The URL, normalised (punycode host, no default port).
    pub url: String,
    /// The host, normalised.
    pub host: String,
    /// The file name to save under.
    pub file_name: SafeFileName,
    /// Warnings to pass on (pickle formats).
    pub warnings: Vec<String>,
}

/// Checks a download of `url`, saved as `file_name` when given, else as the
/// last segment of the URL's path.
///
/// # Errors
/// [`DownloadError`] naming the first rule broken.
pub fn check_download(
    url: &str,
    file_name: Option<&str>,
    policy: &DownloadPolicy,
) -> Result<SafeDownload, DownloadError> {
    let parsed = Url::parse(url.trim()).map_err(|e| reject(DownloadRule::Malformed, format!("not a URL ({e})")))?;
    if parsed.scheme() != "https" {
        return Err(reject(
            DownloadRule::Scheme,
            format!("only https downloads are allowed, not `{}`", parsed.scheme()),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(reject(
            DownloadRule::UserInfo,
            "the URL carries a user name or password",
        ));
    }
    let host = match parsed.host() {
        Some(Host::Domain(d)) => d.trim_end_matches('.').to_owned(),
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => {
            return Err(reject(
                DownloadRule::IpLiteral,
                "an IP address is not an allowed host; use the domain name",
            ));
        }
        None => return Err(reject(DownloadRule::Malformed, "the URL has no host")),
    };
    let allowed = policy
        .domains
        .iter()
        .any(|d| host == *d || host.strip_suffix(d.as_str()).is_some_and(|rest| rest.ends_with('.')));
    if !allowed {
        return Err(reject(
            DownloadRule::Domain,
            format!("`{host}` is not on the allowed list ({})", policy.domains.join(", ")),
        ));
    }
    if let Some(port) = parsed.port() {
        return Err(reject(
            DownloadRule::Port,
            format!("port {port} is not allowed (only 443)"),
        ));
    }
    let raw_name = match file_name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_owned(),
        None => parsed
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| reject(DownloadRule::FileName, "the URL names no file; give a file name"))?
            .to_owned(),
    };
    let name = SafeFileName::parse(&raw_name, &policy.extensions).map_err(|e| DownloadError {
        rule: DownloadRule::FileName,
        detail: e.to_string(),
        path: Some(e),
    })?;
    let ext = name.extension();
    let warnings = if PICKLE_EXTENSIONS.contains(&ext.as_str()) {
        vec![format!(
            "{ext} is a pickle format: loading it can run arbitrary code; prefer .safetensors"
        )]
    } else {
        Vec::new()
    };
    Ok(SafeDownload {
        url: parsed.to_string(),
        host,
        file_name: name,
        warnings,
    })
}
