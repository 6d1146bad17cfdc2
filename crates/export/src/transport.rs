//! Every conversation with the remote: list its refs, fetch, push; credentials for http(s) and ssh; URLs made
//! safe to log.

use std::fmt;
use std::path::{Path, PathBuf};

use git2::{Cred, CredentialType, Oid, RemoteCallbacks, Repository};

use crate::ExportError;

/// How the exporter authenticates. `Debug` never shows a secret.
#[derive(Clone, Default)]
pub struct Credentials {
    /// From `--git-credentials`: lines like `https://USER:TOKEN@HOST[:PORT][/PATH]` (git's credential store).
    store: Vec<StoredCredential>,
    /// `--git-username` / `RAILYARD_GIT_PASSWORD`: for any http(s) remote the store has no line for.
    user_pass: Option<(String, String)>,
    /// `--git-ssh-key` (and its passphrase); without it the SSH agent at `SSH_AUTH_SOCK` is asked.
    ssh_key: Option<(PathBuf, Option<String>)>,
    /// `--git-ssh-known-hosts`: the host keys an ssh remote may present (None: libgit2's own check).
    known_hosts: Option<Vec<KnownHost>>,
}

#[derive(Clone, Debug)]
struct KnownHost {
    /// (host, port) for each name on the line: `host` means port 22, `[host]:port` that port (as OpenSSH reads it).
    hosts: Vec<(String, u16)>,
    key: Vec<u8>,
}

#[derive(Clone)]
struct StoredCredential {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
    username: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("stored", &self.store.iter().map(|c| format!("{}://{}", c.scheme, c.host)).collect::<Vec<_>>())
            .field("user_pass", &self.user_pass.as_ref().map(|(u, _)| u))
            .field("ssh_key", &self.ssh_key.as_ref().map(|(k, _)| k))
            .field("known_hosts", &self.known_hosts.as_ref().map(Vec::len))
            .finish()
    }
}

impl Credentials {
    /// Reads the credential store file (if any) and takes the rest as given. A line that does not parse is an
    /// error naming its line number, never its content.
    pub fn load(
        store_file: Option<&Path>,
        user_pass: Option<(String, String)>,
        ssh_key: Option<(PathBuf, Option<String>)>,
    ) -> Result<Self, ExportError> {
        let mut store = Vec::new();
        if let Some(path) = store_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ExportError::Credentials(format!("cannot read {}: {e}", path.display())))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let bad = || {
                    ExportError::Credentials(format!(
                        "{} line {}: not a URL with user and password",
                        path.display(),
                        n + 1
                    ))
                };
                let url = url::Url::parse(line).map_err(|_| bad())?;
                let (Some(host), Some(password)) = (url.host_str(), url.password()) else { return Err(bad()) };
                store.push(StoredCredential {
                    scheme: url.scheme().to_owned(),
                    host: host.to_owned(),
                    port: url.port(),
                    path: url.path().trim_end_matches('/').to_owned(),
                    username: percent_decode(url.username()),
                    password: percent_decode(password),
                });
            }
        }
        Ok(Self { store, user_pass, ssh_key, known_hosts: None })
    }

    /// Accept only the ssh host keys in `file` (OpenSSH `known_hosts` format, hosts not hashed).
    pub fn with_known_hosts(mut self, file: &Path) -> Result<Self, ExportError> {
        use base64::Engine;
        let text = std::fs::read_to_string(file)
            .map_err(|e| ExportError::Credentials(format!("cannot read {}: {e}", file.display())))?;
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| ExportError::Credentials(format!("{} line {}: {why}", file.display(), n + 1));
            let mut fields = line.split_whitespace();
            let (Some(hosts), Some(_kind), Some(key)) = (fields.next(), fields.next(), fields.next()) else {
                return Err(bad("expected `HOST KEYTYPE BASE64KEY`"));
            };
            if hosts.starts_with('|') {
                return Err(bad("hashed host names are not supported; write the host name"));
            }
            let key =
                base64::engine::general_purpose::STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
            let hosts = hosts
                .split(',')
                .map(|h| match h.strip_prefix('[').and_then(|r| r.split_once("]:")) {
                    Some((host, port)) => port.parse().map(|p| (host.to_owned(), p)).map_err(|_| bad("bad port")),
                    None => Ok((h.to_owned(), 22)),
                })
                .collect::<Result<_, _>>()?;
            entries.push(KnownHost { hosts, key });
        }
        self.known_hosts = Some(entries);
        Ok(self)
    }

    /// Whether an ssh host key is acceptable for `host`:`port` (None: no list configured, libgit2 decides).
    fn host_key_known(&self, host: &str, port: u16, key: &[u8]) -> Option<bool> {
        let list = self.known_hosts.as_ref()?;
        Some(list.iter().any(|k| k.key == key && k.hosts.iter().any(|(h, p)| h == host && *p == port)))
    }

    /// The user and password for an http(s) `url`: a matching store line (longest path first), the URL's own
    /// user info, or the configured user and password.
    fn user_pass_for(&self, url: &str) -> Option<(String, String)> {
        let parsed = url::Url::parse(url).ok()?;
        let best = self
            .store
            .iter()
            .filter(|c| {
                c.scheme == parsed.scheme()
                    && Some(c.host.as_str()) == parsed.host_str()
                    && c.port == parsed.port()
                    && (c.path.is_empty() || parsed.path().starts_with(&c.path))
            })
            .max_by_key(|c| c.path.len());
        if let Some(c) = best {
            return Some((c.username.clone(), c.password.clone()));
        }
        if let Some(password) = parsed.password() {
            return Some((percent_decode(parsed.username()), percent_decode(password)));
        }
        self.user_pass.clone()
    }

    /// libgit2 replaces the reason our host-key check gives with its own words; say which list refused the key.
    pub(crate) fn explain(&self, e: git2::Error) -> git2::Error {
        if self.known_hosts.is_some() && e.class() == git2::ErrorClass::Ssh && e.message().contains("hostkey") {
            return git2::Error::new(e.code(), e.class(), format!("{}: not in --git-ssh-known-hosts", e.message()));
        }
        e
    }

    /// Callbacks answering libgit2's credential questions; each kind is offered once, so a wrong secret is an
    /// authentication error, not an endless loop.
    pub(crate) fn callbacks(&self, remote_url: &str) -> RemoteCallbacks<'_> {
        let ssh_port =
            url::Url::parse(remote_url).ok().filter(|u| u.scheme() == "ssh").and_then(|u| u.port()).unwrap_or(22);
        let mut tried = CredentialType::empty();
        let mut cb = RemoteCallbacks::new();
        cb.credentials(move |url, username_from_url, allowed| {
            let user = username_from_url.unwrap_or("git");
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
                && !tried.contains(CredentialType::USER_PASS_PLAINTEXT)
            {
                tried |= CredentialType::USER_PASS_PLAINTEXT;
                if let Some((u, p)) = self.user_pass_for(url) {
                    return Cred::userpass_plaintext(&u, &p);
                }
            }
            if allowed.contains(CredentialType::SSH_KEY) && !tried.contains(CredentialType::SSH_KEY) {
                tried |= CredentialType::SSH_KEY;
                return match &self.ssh_key {
                    Some((key, passphrase)) => Cred::ssh_key(user, None, key, passphrase.as_deref()),
                    None => Cred::ssh_key_from_agent(user),
                };
            }
            if allowed.contains(CredentialType::USERNAME) && !tried.contains(CredentialType::USERNAME) {
                tried |= CredentialType::USERNAME;
                return Cred::username(user);
            }
            Err(git2::Error::from_str(&format!("authentication failed for {}", redact(url))))
        });
        cb.certificate_check(move |cert, host| {
            let Some(hostkey) = cert.as_hostkey().and_then(|k| k.hostkey()) else {
                // TLS: libgit2 verifies the chain against the system's (or SSL_CERT_FILE's) CAs.
                return Ok(git2::CertificateCheckStatus::CertificatePassthrough);
            };
            match self.host_key_known(host, ssh_port, hostkey) {
                Some(true) => Ok(git2::CertificateCheckStatus::CertificateOk),
                Some(false) => Err(git2::Error::from_str(&format!(
                    "the ssh host key of {host}:{ssh_port} is not in --git-ssh-known-hosts"
                ))),
                None => Ok(git2::CertificateCheckStatus::CertificatePassthrough),
            }
        });
        cb
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The directory of a remote on this machine (a path or a `file://` URL); None for network remotes.
pub fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(path) = url.strip_prefix("file://") {
        return Some(PathBuf::from(path));
    }
    (!url.contains("://") && !url.contains('@')).then(|| PathBuf::from(url))
}

/// `url` with any password replaced by `***`, for logs and error messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The remote's refs as it lists them (`^{}` entries included), in one connection.
pub fn list(repo: &Repository, url: &str, creds: &Credentials) -> Result<Vec<(String, Oid)>, git2::Error> {
    let mut remote = repo.remote_anonymous(url)?;
    let conn =
        remote.connect_auth(git2::Direction::Fetch, Some(creds.callbacks(url)), None).map_err(|e| creds.explain(e))?;
    Ok(conn.list()?.iter().map(|h| (h.name().to_owned(), h.oid())).collect())
}

/// Fetches `refspecs` (no automatic tag following).
pub fn fetch(repo: &Repository, url: &str, creds: &Credentials, refspecs: &[String]) -> Result<(), git2::Error> {
    let mut remote = repo.remote_anonymous(url)?;
    let mut opts = git2::FetchOptions::new();
    opts.remote_callbacks(creds.callbacks(url));
    opts.download_tags(git2::AutotagOption::None);
    remote.fetch(refspecs, Some(&mut opts), Some("railyard-export: fetch")).map_err(|e| creds.explain(e))
}

/// Pushes `specs` in one connection; returns the refs the remote refused, with its reason.
pub fn push(
    repo: &Repository,
    url: &str,
    creds: &Credentials,
    specs: &[String],
) -> Result<Vec<(String, String)>, git2::Error> {
    push_decided(repo, url, creds, |_| Ok::<_, std::convert::Infallible>(specs.to_vec()))
        .map(|pushed| pushed.unwrap_or_else(|never| match never {}))
}

/// Connects for a push, lets `decide` pick the specs to push from the refs the remote advertised on that connection
/// (an `Err`, or no spec, ends it with nothing sent), and pushes them on the same connection; returns the refs the
/// remote refused, with its reason. The remote takes each update only if the ref still holds the value it advertised
/// (none, for a ref it did not list), so what `decide` saw cannot change under it. libgit2 packs from a handle on
/// this repo that [`crate::narrow`] prepares, so the cost follows the change, not the repo.
pub fn push_decided<E>(
    repo: &Repository,
    url: &str,
    creds: &Credentials,
    decide: impl FnOnce(&[(String, Oid)]) -> Result<Vec<String>, E>,
) -> Result<Result<Vec<(String, String)>, E>, git2::Error> {
    let view = railyard_store::open(repo.path())?;
    let mut remote = view.remote_anonymous(url)?;
    let mut conn =
        remote.connect_auth(git2::Direction::Push, Some(creds.callbacks(url)), None).map_err(|e| creds.explain(e))?;
    let heads: Vec<(String, Oid)> = conn.list()?.iter().map(|h| (h.name().to_owned(), h.oid())).collect();
    let specs = match decide(&heads) {
        Ok(specs) if specs.is_empty() => return Ok(Ok(Vec::new())),
        Ok(specs) => specs,
        Err(e) => return Ok(Err(e)),
    };
    let narrowed = crate::narrow::narrow(repo, &view, &heads, &specs)?;
    tracing::debug!(commits = narrowed.commits, reused = narrowed.reused, ms = narrowed.ms as u64, "narrowed the push");
    let mut rejected = Vec::new();
    let mut callbacks = creds.callbacks(url);
    callbacks.push_update_reference(|refname, status| {
        if let Some(reason) = status {
            rejected.push((refname.to_owned(), reason.to_owned()));
        }
        Ok(())
    });
    let mut opts = git2::PushOptions::new();
    opts.remote_callbacks(callbacks);
    conn.remote().push(&specs, Some(&mut opts)).map_err(|e| creds.explain(e))?;
    drop(opts);
    Ok(Ok(rejected))
}

/// The bound of libgit2's object cache (see [`init_libgit2`]).
pub const CACHE_BYTES: usize = 8 << 20;

/// libgit2's process-wide settings for both binaries, set first thing in `main`: connect and read/write timeouts for
/// every remote, so a remote that stops answering fails the round (and is retried) instead of hanging the exporter;
/// big trees in the object cache; and no re-hashing of every object read (git itself does not either: `git fsck` is
/// the integrity check), which was the largest cost of reading a large tree.
#[allow(unsafe_code)]
pub fn init_libgit2(connect_ms: i32, io_ms: i32) -> Result<(), git2::Error> {
    git2::opts::strict_hash_verification(false);
    // SAFETY: libgit2 reads these globals when it opens a connection. The binaries call this first thing in
    // `main`, before any thread exists, which is the condition git2 documents.
    unsafe {
        git2::opts::set_server_connect_timeout_in_milliseconds(connect_ms)?;
        git2::opts::set_server_timeout_in_milliseconds(io_ms)?;
        // Trees up to 4 MiB stay in a repo handle's object cache (libgit2 keeps only those under 4 KiB): the
        // directories of every application (10,000 entries are ~400 KiB) are read by nearly every write, and the
        // writer reads the version it wrote last instead of inflating it from a pack again.
        git2::opts::set_cache_object_limit(git2::ObjectType::Tree, 4 << 20)?;
        // The cache's total, for all repo handles (libgit2's default is 256 MiB), counted in the objects' raw
        // sizes: a parsed tree takes more (its entry array and allocations), so a train's 20,000 small application
        // directories filled 16 MiB of it with a good deal more memory. Every environment's `applications/` tree
        // of 10,000 apps fits in 8 MiB (400 KiB each); indexing the history of such a repo reads every tree of
        // every commit once, and would otherwise leave 256 MiB of trees nobody reads again.
        git2::opts::set_cache_max_size(CACHE_BYTES as isize)?;
        // Where libgit2 reads a pack itself (its indexer checking a received pack; a repo with alternates, which
        // keeps libgit2's own store, see railyard_store::attach), it maps windows of 8 MiB (1 GiB by default on
        // 64-bit), at most 32 MiB of them at a time (8 GiB). Every other read goes through railyard_store, which
        // maps nothing.
        git2::opts::set_mwindow_size(8 << 20)?;
        git2::opts::set_mwindow_mapped_limit(32 << 20)?;
        // No limit on the pack files held open (libgit2's default). Over a limit, libgit2 1.9 closes the least
        // recently used pack file after letting go of its global lock, while another thread may be freeing that
        // pack: with a pack per batch, roll-ups and repo handles opened per read, that corrupted the heap
        // ("malloc(): unaligned tcache chunk detected" in the kill loops). The roll-ups keep the packs few instead,
        // and the API raises its open-file limit at start (`serve::Limits::within_file_limit`).
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_lines_match_scheme_host_port_and_longest_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds");
        std::fs::write(
            &file,
            "# comment\nhttps://alice:s%40cret@git.example.com\nhttps://bob:tok@git.example.com/team/repo\nhttp://carol:pw@127.0.0.1:8123\n",
        )
        .unwrap();
        let c = Credentials::load(Some(&file), Some(("dave".into(), "fallback".into())), None).unwrap();
        assert_eq!(c.user_pass_for("https://git.example.com/other.git"), Some(("alice".into(), "s@cret".into())));
        assert_eq!(c.user_pass_for("https://git.example.com/team/repo.git"), Some(("bob".into(), "tok".into())));
        assert_eq!(c.user_pass_for("http://127.0.0.1:8123/r.git"), Some(("carol".into(), "pw".into())));
        assert_eq!(c.user_pass_for("http://127.0.0.1:9999/r.git"), Some(("dave".into(), "fallback".into())));
        assert_eq!(c.user_pass_for("https://u:p%2Bq@elsewhere/r.git"), Some(("u".into(), "p+q".into())));
        let shown = format!("{c:?}");
        assert!(!shown.contains("s@cret") && !shown.contains("tok") && !shown.contains("fallback"), "{shown}");
    }

    #[test]
    fn a_bad_store_line_names_its_number_not_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds");
        std::fs::write(&file, "https://ok:pw@host\nhttps://no-password-secretish@host\n").unwrap();
        let err = Credentials::load(Some(&file), None, None).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("secretish"), "{err}");
    }

    #[test]
    fn known_hosts_match_host_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        std::fs::write(&file, "# c\n[127.0.0.1]:2222,gitserver ssh-ed25519 AAECAw==\n").unwrap();
        let c = Credentials::default().with_known_hosts(&file).unwrap();
        assert_eq!(c.host_key_known("127.0.0.1", 2222, &[0, 1, 2, 3]), Some(true));
        assert_eq!(c.host_key_known("127.0.0.1", 22, &[0, 1, 2, 3]), Some(false), "[host]:port is for that port only");
        assert_eq!(c.host_key_known("gitserver", 22, &[0, 1, 2, 3]), Some(true), "a bare host name means port 22");
        assert_eq!(c.host_key_known("gitserver", 2222, &[0, 1, 2, 3]), Some(false));
        assert_eq!(c.host_key_known("127.0.0.1", 2222, &[9]), Some(false));
        assert_eq!(c.host_key_known("other", 22, &[0, 1, 2, 3]), Some(false));
        assert_eq!(Credentials::default().host_key_known("x", 22, &[1]), None);
        std::fs::write(&file, "|1|hash= ssh-ed25519 AAECAw==\n").unwrap();
        assert!(Credentials::default().with_known_hosts(&file).unwrap_err().to_string().contains("line 1"));
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(redact("https://u:secret@h/r.git"), "https://u:***@h/r.git");
        assert_eq!(redact("https://h/r.git"), "https://h/r.git");
        assert_eq!(redact("git@github.com:o/r.git"), "git@github.com:o/r.git");
        assert_eq!(redact("./.railyard/remote.git"), "./.railyard/remote.git");
    }
}
