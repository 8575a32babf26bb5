//! `bunkerd restore`: a new box becomes a lost one again from its 24 words.
//!
//! The words are read from standard input — never from the command line,
//! where `ps` and shell history would show them, and never logged. A data
//! directory that already belongs to other words is refused untouched; an
//! empty one gets the seed file, then the engine starts with that identity
//! (same words ⇒ same PeerId) and [`bunker_node::Node::restore`] brings the
//! manifest back from its holders, with a progress bar on the terminal. The
//! command exits 0 once the manifest is back; files kept locally are fetched
//! during the restore, the others on first access.

use std::future::Future;
use std::io::{BufRead, Read};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use bunker_core::seed::{Seed, WORD_COUNT};
use bunker_node::recovery::{RestoreProgress, RestoreReport, RestoreStage};
use bunker_node::Node;
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::data_dir::{DataDir, SEED_FILE};

/// Largest recovery kit file read (a sealed kit is well under 2 KiB).
const MAX_KIT_FILE: u64 = 64 * 1024;
/// Longest input read while looking for the words.
const MAX_WORDS_INPUT: u64 = 16 * 1024;

/// Reads the 24 words from `input`: separated by spaces or line breaks;
/// numbering such as `1.` or `12)` (a list copied from the setup page) is
/// skipped. Reading stops at the 24th word.
pub fn read_words(input: &mut dyn BufRead) -> anyhow::Result<Seed> {
    let mut words: Vec<Zeroizing<String>> = Vec::with_capacity(WORD_COUNT);
    let mut limited = input.take(MAX_WORDS_INPUT);
    let mut line = Zeroizing::new(String::new());
    while words.len() < WORD_COUNT {
        line.clear();
        let n = limited.read_line(&mut line).context("cannot read the words from standard input")?;
        if n == 0 {
            break;
        }
        for token in line.split_whitespace() {
            let token = token.trim_matches(|c: char| !c.is_alphabetic());
            if token.is_empty() || !token.chars().all(|c| c.is_alphabetic()) {
                continue;
            }
            if words.len() < WORD_COUNT {
                words.push(Zeroizing::new(token.to_lowercase()));
            }
        }
    }
    if words.len() != WORD_COUNT {
        bail!("expected the box's {WORD_COUNT} words on standard input, got {}", words.len());
    }
    let phrase = Zeroizing::new(words.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(" "));
    // The error names the problem (unknown word, bad checksum), never the words.
    Seed::from_phrase(&phrase).map_err(|e| anyhow::anyhow!("these are not a box's 24 words: {e}"))
}

/// What the seed file of the data directory was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedInstall {
    /// None was there: written now.
    Written,
    /// The same words were there already (a restore run again).
    AlreadyThere,
}

/// Puts `seed` into the data directory, refusing one that holds other words:
/// restoring over another box would lose that box's identity.
pub fn install_seed(dir: &DataDir, seed: &Seed) -> anyhow::Result<SeedInstall> {
    let path = dir.path().join(SEED_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            match Seed::from_phrase(&text) {
                Ok(existing) if existing == *seed => Ok(SeedInstall::AlreadyThere),
                Ok(_) => bail!(
                    "data dir {} already belongs to a box with other words: refusing to restore over it (use an empty data dir)",
                    dir.path().display()
                ),
                Err(e) => bail!(
                    "data dir {} has a seed file that is not valid ({e}): refusing to restore over it",
                    dir.path().display()
                ),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = Zeroizing::new(format!("{}\n", seed.phrase().as_str()));
            bunker_web::store::write_private(&path, text.as_bytes())
                .with_context(|| format!("cannot write the seed file {}", path.display()))?;
            Ok(SeedInstall::Written)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the seed file {}", path.display())),
    }
}

/// Reads a recovery kit file (sealed bytes or the `BUNKERKIT1:` text).
pub fn read_kit_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open the recovery kit {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_KIT_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the recovery kit {}", path.display()))?;
    if bytes.len() as u64 > MAX_KIT_FILE {
        bail!("{} is larger than any recovery kit ({MAX_KIT_FILE} bytes at most)", path.display());
    }
    Ok(bytes)
}

fn stage_text(p: &RestoreProgress) -> String {
    let stage = match p.stage {
        RestoreStage::Starting => "starting",
        RestoreStage::FindingHolders => "finding holders",
        RestoreStage::FetchingManifest => "fetching manifest",
        RestoreStage::Searching => "searching peers of peers",
        RestoreStage::Importing => "importing",
        RestoreStage::RestoringFiles => "restoring files",
        RestoreStage::Done => "done",
        RestoreStage::Failed => "failed",
    };
    format!("{stage}: {} (holders tried {}/{})", p.message, p.holders_tried, p.holders_found)
}

/// The whole `bunkerd restore`: words from `words`, seed into `data_dir`,
/// the engine started by `start` (the daemon's own engine start-up, given
/// the locked data dir and the seed), the restore with a progress bar, the
/// engine stopped. Returns the report once the manifest is back.
pub async fn run<F, Fut>(data_dir: &Path, words: &mut dyn BufRead, kit: Option<&Path>, start: F) -> anyhow::Result<RestoreReport>
where
    F: FnOnce(&DataDir, Seed) -> Fut,
    Fut: Future<Output = anyhow::Result<Node>>,
{
    let seed = read_words(words)?;
    let kit_bytes = kit.map(read_kit_file).transpose()?;
    let dir = DataDir::open(data_dir)?;
    match install_seed(&dir, &seed)? {
        SeedInstall::Written => tracing::info!(data_dir = %dir.path().display(), "seed written from the words given"),
        SeedInstall::AlreadyThere => tracing::info!(data_dir = %dir.path().display(), "the data dir already has these words; restoring again"),
    }
    let node = start(&dir, seed).await.context("cannot start the engine")?;
    tracing::info!(peer_id = %node.peer_id(), "identity from the words");
    let kit = match kit_bytes {
        Some(bytes) => match node.open_recovery_kit(&bytes) {
            Ok(kit) => Some(kit),
            Err(e) => {
                node.shutdown().await;
                bail!("the recovery kit does not open with these words: {e}");
            }
        },
        None => None,
    };

    let (tx, mut rx) = watch::channel(RestoreProgress::default());
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(200));
    let show = {
        let bar = bar.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let p = rx.borrow_and_update().clone();
                if p.files_to_restore > 0 {
                    bar.set_length(p.files_to_restore);
                    bar.set_position(p.files_restored);
                }
                bar.set_message(stage_text(&p));
            }
        })
    };
    let result = node.restore(kit, tx).await;
    let _ = show.await;
    bar.finish_and_clear();
    node.shutdown().await;
    let report = result.context("restore failed")?;
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    for (path, why) in &report.files_failed {
        tracing::warn!(%path, reason = %why, "file not fetched back yet; it is read from its replicas on first access");
    }
    Ok(report)
}

/// One line for the terminal when the restore is done.
pub fn summary(r: &RestoreReport) -> String {
    format!(
        "manifest version {} restored{}: {} files, {} kept locally fetched back, {} local copies absent",
        r.version,
        r.from.as_deref().map(|p| format!(" from {p}")).unwrap_or_default(),
        r.files,
        r.files_restored,
        r.local_copies_absent
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_read_across_lines_with_numbering_skipped() {
        let seed = Seed::generate();
        let numbered: String = seed.words().enumerate().map(|(i, w)| format!("{}. {}\n", i + 1, w.to_uppercase())).collect();
        let read = read_words(&mut numbered.as_bytes()).unwrap();
        assert_eq!(read, seed);
    }

    #[test]
    fn too_few_words_or_a_bad_checksum_is_an_error_that_does_not_echo_them() {
        let seed = Seed::generate();
        let words: Vec<&str> = seed.words().collect();
        let short = words[..23].join(" ");
        let err = read_words(&mut short.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("got 23"), "{err}");
        let mut swapped = words.clone();
        swapped.swap(0, 1);
        let text = swapped.join(" ");
        if let Err(e) = read_words(&mut text.as_bytes()) {
            let e = e.to_string();
            assert!(!e.contains(words[2]), "error echoes a word: {e}");
        }
    }

    #[test]
    fn a_data_dir_with_other_words_is_refused_and_left_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let (theirs, _) = dir.load_or_create_seed().unwrap();
        let before = std::fs::read(tmp.path().join(SEED_FILE)).unwrap();
        let err = install_seed(&dir, &Seed::generate()).unwrap_err().to_string();
        assert!(err.contains("other words"), "{err}");
        assert_eq!(std::fs::read(tmp.path().join(SEED_FILE)).unwrap(), before);
        assert_eq!(install_seed(&dir, &theirs).unwrap(), SeedInstall::AlreadyThere);
    }

    #[test]
    fn an_empty_data_dir_gets_the_seed_privately() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let seed = Seed::generate();
        assert_eq!(install_seed(&dir, &seed).unwrap(), SeedInstall::Written);
        let (loaded, _) = dir.load_or_create_seed().unwrap();
        assert_eq!(loaded, seed);
        let mode = std::fs::metadata(tmp.path().join(SEED_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// The whole `bunkerd restore` against real engines on loopback: the
    /// owner's manifest sits on two engine hosts; a new data dir given the
    /// words on "stdin" gets the seed and the manifest back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn restore_brings_the_manifest_back_into_an_empty_data_dir() {
        use bunker_manifest::{FilePath, FolderPath, Manifest, NewFile};
        use bunker_net::{Net, NetConfig};
        use bunker_node::{NodeConfig, NodeParts};

        async fn engine(seed: &Seed, dir: &Path, dial: &[Node]) -> anyhow::Result<Node> {
            let keys = bunker_core::keys::Keys::from_seed(seed);
            let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await?;
            let manifest = Manifest::open(dir.join("MANIFEST.db"))?;
            let seed = Seed::from_phrase(&seed.phrase())?;
            let node = Node::start(NodeParts { seed, config: NodeConfig::new(dir.join("store")), manifest, net, inbound, ln: None }).await?;
            for other in dial {
                let addrs = other.net().listen_addrs().await?;
                node.net().dial(other.peer_id(), addrs).await?;
            }
            Ok(node)
        }

        let tmp = tempfile::tempdir().unwrap();
        let mut hosts = Vec::new();
        for i in 0..2 {
            let dir = tmp.path().join(format!("host{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            hosts.push(engine(&Seed::generate(), &dir, &hosts).await.unwrap());
        }
        let seed = Seed::generate();
        let old = tmp.path().join("old");
        std::fs::create_dir_all(&old).unwrap();
        {
            let mut m = Manifest::open(old.join("MANIFEST.db")).unwrap();
            let file = NewFile {
                path: FilePath::parse("/docs/a.txt").unwrap(),
                object_id: bunker_core::FileId::random(),
                size: 5,
                plaintext_blake3: [1; 32],
                segment_size: 65536,
                keep_local: false,
                redundancy: 2,
                local: None,
                created_at: 1,
                modified_at: 1,
            };
            m.put_file(&file, &[]).unwrap();
        }
        let a = engine(&seed, &old, &hosts).await.unwrap();
        let sent = a.replicate_manifest_now(Some(2)).await.unwrap();
        assert_eq!(sent.stored.len(), 2, "{sent:?}");
        a.shutdown().await;
        drop(a);

        let new_dir = tmp.path().join("new");
        let words: String = seed.words().collect::<Vec<_>>().join("\n") + "\n";
        let report = run(&new_dir, &mut words.as_bytes(), None, |dir, s| {
            let dir = dir.path().to_owned();
            let hosts = hosts.clone();
            async move { engine(&s, &dir, &hosts).await }
        })
        .await
        .expect("restore succeeds");
        assert!(report.imported, "{report:?}");
        assert_eq!(report.version, sent.version);
        assert_eq!(report.files, 1);
        assert!(summary(&report).contains("1 files"));
        let m = Manifest::open(new_dir.join("MANIFEST.db")).unwrap();
        assert_eq!(m.list_folder(&FolderPath::parse("/docs").unwrap()).unwrap().files[0].name, "a.txt");
        let (written, _) = DataDir::open(&new_dir).unwrap().load_or_create_seed().unwrap();
        assert_eq!(written, seed, "the words became the data dir's seed");

        // Other words on the same data dir are refused before anything starts.
        let other: String = Seed::generate().words().collect::<Vec<_>>().join(" ");
        let err = run(&new_dir, &mut other.as_bytes(), None, |_, _| async { anyhow::bail!("must not start") })
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("other words"), "{err}");
        for h in hosts {
            h.shutdown().await;
        }
    }
}
