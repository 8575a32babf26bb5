//! The daemon's configuration: one TOML file, every key also settable by
//! environment variable or flag.
//!
//! Precedence, lowest first: built-in defaults, the config file, `BUNKER_*`
//! environment variables, flags. Every key has a default so that a box with
//! no config file at all runs. The environment name of a key is its dotted
//! path upper-cased with `_` for `.`: `web.addr` is `BUNKER_WEB_ADDR`.
//!
//! Errors name the key and where its value came from, in one line, because
//! the person reading them is looking at a box that did not start.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use multiaddr::Multiaddr;
use serde::{Deserialize, Serialize};

/// The whole configuration of one box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the box keeps its seed, MANIFEST.db, Lightning state and local
    /// API socket. On the appliance this is on the SD card; bulk data lives
    /// on the USB disks, never here.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Log filter in `tracing`'s env-filter syntax (`info`,
    /// `bunkerd=debug,info`, ...). `RUST_LOG` overrides it when set.
    #[serde(default = "default_log")]
    pub log: String,
    /// The web admin page.
    #[serde(default)]
    pub web: WebConfig,
    /// Peer-to-peer networking.
    #[serde(default)]
    pub net: NetConfig,
    /// How often background work runs.
    #[serde(default)]
    pub intervals: Intervals,
    /// Space kept back from what is offered to peers.
    #[serde(default)]
    pub reserves: Reserves,
    /// The front panel: OLED, buttons and status LED.
    #[serde(default)]
    pub panel: PanelSettings,
    /// Where sealed objects (own copies, hosted objects) live.
    #[serde(default)]
    pub storage: StorageConfig,
    /// What this box asks of owners who store on it.
    #[serde(default)]
    pub hosting: HostingConfig,
    /// The Lightning wallet that pays hosts and is paid for hosting.
    #[serde(default)]
    pub ln: LnSettings,
    /// What this box pays when it places copies of its files on peers.
    #[serde(default)]
    pub placement: PlacementConfig,
}

impl Config {
    /// The directory sealed objects live in: `storage.root`, or
    /// `DATA_DIR/store` when it is empty.
    pub fn store_root(&self) -> PathBuf {
        if self.storage.root.as_os_str().is_empty() {
            self.data_dir.join("store")
        } else {
            self.storage.root.clone()
        }
    }

    /// The engine's settings, from the keys that concern it.
    pub fn node_config(&self) -> bunker_node::NodeConfig {
        let mut node = bunker_node::NodeConfig::new(self.store_root());
        node.audit_interval = self.intervals.audit;
        node.full_check_interval = self.intervals.full_check;
        node.settle_interval = self.intervals.settle;
        node.repair_after_failures = self.intervals.repair_after_failures;
        node.hosting.price_msat_per_gib_day = self.hosting.price_msat_per_gib_day;
        node.hosting.retrieval_msat_per_gib = self.hosting.retrieval_msat_per_gib;
        node.hosting.price_floor_msat_per_gib_day = self.hosting.price_floor_msat_per_gib_day;
        node.hosting.safety_margin_bytes = self.reserves.safety_margin.0;
        node.hosting.max_hosted_bytes = self.hosting.max_hosted.0.map(|s| s.0);
        node.hosting.swap_grace = self.hosting.swap_grace;
        node.replication.debounce = self.intervals.manifest_debounce;
        node.placement.max_price_msat_per_gib_day = self.placement.max_price_msat_per_gib_day;
        node.placement.max_retrieval_msat_per_gib = self.placement.max_retrieval_msat_per_gib;
        node.placement.term = self.placement.term;
        node.placement.propose_swaps = self.placement.propose_swaps;
        node
    }

    /// Lightning's settings: `None` when `ln.chain = "none"` (Lightning off).
    /// Its state lives in `DATA_DIR/ln`.
    pub fn ln_config(&self) -> Option<bunker_ln::LnConfig> {
        let chain = self.ln.chain.0.clone()?;
        let mut ln = bunker_ln::LnConfig::new(self.data_dir.join("ln"), self.ln.network, chain);
        ln.listen = self.ln.listen.clone();
        ln.settle_threshold_msat = self.ln.settle_threshold_msat;
        ln.lsps2 = self.ln.lsps2.source();
        Some(ln)
    }
}

/// Where sealed objects live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of sealed objects (local copies, objects hosted for peers).
    /// Empty: `DATA_DIR/store`. On the appliance: the adopted USB data disk,
    /// never the SD card.
    #[serde(default)]
    pub root: PathBuf,
}

/// What this box asks of owners who store on it (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostingConfig {
    /// Our asking price for storage, msat per GiB per day.
    #[serde(default = "default_price")]
    pub price_msat_per_gib_day: u64,
    /// Our price to hand back a whole object (full checks, recoveries), msat per GiB.
    #[serde(default = "default_retrieval_price")]
    pub retrieval_msat_per_gib: u64,
    /// Paid requests below this price per GiB-day are refused.
    #[serde(default = "default_price_floor")]
    pub price_floor_msat_per_gib_day: u64,
    /// Upper bound on what is offered to peers in total; empty: all free
    /// space beyond the reserves.
    #[serde(default)]
    pub max_hosted: OptionalSize,
    /// How long a swap partner that lost one of our copies keeps its own
    /// copies here before as many bytes of them are dropped.
    #[serde(default = "default_swap_grace", with = "duration")]
    pub swap_grace: Duration,
}

/// Lightning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LnSettings {
    /// `bitcoin`, `testnet`, `signet` or `regtest`; must match the chain source.
    #[serde(default = "default_ln_network")]
    pub network: bunker_ln::Network,
    /// `none` (Lightning off), `esplora:<url>`, `electrum:<url>` or
    /// `bitcoind:<user>:<password>@<host>:<port>`.
    #[serde(default)]
    pub chain: ChainSetting,
    /// Where to accept Lightning peers (`host:port`); empty: none.
    #[serde(default)]
    pub listen: Vec<SocketAddr>,
    /// Settle what a contract is owed once it reaches this many msat.
    #[serde(default = "default_settle_threshold")]
    pub settle_threshold_msat: u64,
    /// An LSPS2 liquidity provider (just-in-time channels) for a box with
    /// no inbound capacity yet; all empty: none.
    #[serde(default)]
    pub lsps2: Lsps2Setting,
}

/// `ln.lsps2`: an LSPS2 liquidity provider. A new box has no inbound
/// capacity, so nobody can pay it for hosting; with a provider, the box's
/// first invoice is paid through a channel the provider opens just in time
/// (keeping a fee out of that payment). Written
/// `lsps2 = { node_id = "02…", address = "203.0.113.5:9735", token = "…" }`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Lsps2Raw")]
pub struct Lsps2Setting {
    /// The provider's Lightning node id (66 hex digits); empty: no provider.
    pub node_id: String,
    /// Where to reach it, `ip:port` (ldk-node takes a socket address).
    pub address: String,
    /// Access token, if the provider hands them out; empty: none. Never
    /// logged; blanked on the admin page.
    pub token: String,
}

impl fmt::Debug for Lsps2Setting {
    // The token must not reach a log line through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lsps2Setting")
            .field("node_id", &self.node_id)
            .field("address", &self.address)
            .field("token", &if self.token.is_empty() { "" } else { "<hidden>" })
            .finish()
    }
}

impl Lsps2Setting {
    /// What bunker-ln takes, or `None` when no provider is set. Checked
    /// when the configuration was loaded.
    pub fn source(&self) -> Option<bunker_ln::Lsps2Source> {
        if self.node_id.is_empty() {
            return None;
        }
        Some(bunker_ln::Lsps2Source {
            node_id: self.node_id.clone(),
            address: self.address.parse().ok()?,
            token: (!self.token.is_empty()).then(|| self.token.clone()),
        })
    }
}

/// `ln.lsps2` as written, each field checked on its own (so an error names
/// `ln.lsps2.node_id` or `ln.lsps2.address`), then together.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lsps2Raw {
    #[serde(default, deserialize_with = "lsps2_node_id")]
    node_id: String,
    #[serde(default, deserialize_with = "lsps2_address")]
    address: String,
    #[serde(default)]
    token: String,
}

fn lsps2_node_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected the provider's node id as text (66 hex digits)"))?;
    let text = text.trim().to_ascii_lowercase();
    if text.is_empty() {
        return Ok(text);
    }
    text.parse::<bunker_ln::NodeId>().map_err(|_| {
        serde::de::Error::custom(format!("{text:?} is not a Lightning node id: write its 66 hex digits (02… or 03…)"))
    })?;
    Ok(text)
}

fn lsps2_address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected the provider's address as text, ip:port"))?;
    let text = text.trim().to_string();
    if text.is_empty() {
        return Ok(text);
    }
    text.parse::<SocketAddr>().map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not an ip:port address such as \"203.0.113.5:9735\" (host names are not accepted)"
        ))
    })?;
    Ok(text)
}

impl TryFrom<Lsps2Raw> for Lsps2Setting {
    type Error = String;
    fn try_from(raw: Lsps2Raw) -> Result<Self, String> {
        match (raw.node_id.is_empty(), raw.address.is_empty()) {
            (false, true) => return Err("node_id is set but address is empty: the provider needs both".into()),
            (true, false) => return Err("address is set but node_id is empty: the provider needs both".into()),
            (true, true) if !raw.token.is_empty() => {
                return Err("token is set but node_id and address are empty: a token needs its provider".into())
            }
            _ => {}
        }
        Ok(Lsps2Setting { node_id: raw.node_id, address: raw.address, token: raw.token })
    }
}

/// What this box pays when it places copies of its files on peers
/// (DESIGN §6): offers above these caps are not taken. Defaults are
/// bunker-node's `PlacementTerms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementConfig {
    /// Highest storage price taken, msat per GiB per day.
    #[serde(default = "default_max_price")]
    pub max_price_msat_per_gib_day: u64,
    /// Highest retrieval price taken (full checks, recoveries), msat per GiB.
    #[serde(default = "default_max_retrieval")]
    pub max_retrieval_msat_per_gib: u64,
    /// Length of the contracts signed with hosts: at least a day, at most
    /// ten years (hosts refuse longer terms).
    #[serde(default = "default_term", deserialize_with = "placement_term", serialize_with = "term_in_days")]
    pub term: Duration,
    /// Offer hosts a swap first (we keep as many bytes for them, nobody
    /// pays); a host that declines is paid as usual. It binds this box's own
    /// disk space, so it is off unless asked for.
    #[serde(default)]
    pub propose_swaps: bool,
}

/// Longest contract term hosts accept (bunker-node's host side refuses more).
const MAX_TERM: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Shortest term worth a contract (and its signatures, uploads and audits).
const MIN_TERM: Duration = Duration::from_secs(86_400);

/// A term of whole days as `"365d"` (humantime would write a year of 365
/// days as "11months 30days 3h 50m 24s"); anything else as a duration.
fn term_in_days<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if d.as_secs().is_multiple_of(86_400) && d.subsec_nanos() == 0 {
        s.collect_str(&format_args!("{}d", d.as_secs() / 86_400))
    } else {
        duration::serialize(d, s)
    }
}

fn placement_term<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let term = duration::deserialize(d)?;
    if term < MIN_TERM || term > MAX_TERM {
        return Err(serde::de::Error::custom(format!(
            "a contract term of {} is outside 1 day to 10 years (3650d)",
            humantime::format_duration(term)
        )));
    }
    Ok(term)
}

/// Which front panel the daemon drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanelBackend {
    /// The real OLED and GPIO if they answer, else the simulator (one log
    /// line says so): a box without a panel still works.
    Auto,
    /// The real OLED and GPIO; the daemon refuses to start without them.
    Hardware,
    /// The simulator: frames as PNG (`DATA_DIR/panel.png`, the local API),
    /// buttons through the local API.
    Simulator,
    /// No panel at all.
    Off,
}

/// The front panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelSettings {
    /// `auto`, `hardware`, `simulator` or `off`.
    #[serde(default = "default_panel_backend")]
    pub backend: PanelBackend,
    /// I2C bus of the SSD1306 OLED (`/dev/i2c-N`).
    #[serde(default = "default_i2c_bus")]
    pub i2c_bus: u8,
    /// I2C address of the OLED (60 = 0x3C, the usual one; 61 = 0x3D).
    #[serde(default = "default_i2c_address")]
    pub i2c_address: u8,
    /// GPIO (BCM numbers) of the buttons, wired to ground: the first is
    /// next/select, a second one goes back.
    #[serde(default = "default_buttons")]
    pub buttons: Vec<u8>,
    /// GPIO (BCM number) of the status LED; 0 means no LED is fitted
    /// (GPIO 0 is the HAT ID pin, never an LED).
    #[serde(default = "default_led_pin")]
    pub led_pin: u8,
    /// Command run after a shutdown confirmed on the panel, once the daemon
    /// has stopped cleanly (e.g. `["systemctl", "poweroff"]`). Empty: the
    /// daemon only stops.
    #[serde(default)]
    pub shutdown_command: Vec<String>,
}

/// The web admin page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Address and port of the admin page: every interface by default, so a
    /// phone on the LAN reaches it (the page needs a login; it refuses
    /// host names that are not the box's own, against DNS rebinding).
    #[serde(default = "default_web_addr")]
    pub addr: SocketAddr,
}

/// Peer-to-peer networking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// libp2p listen addresses (TCP and QUIC on port 4001 by default).
    #[serde(default = "default_listen")]
    pub listen: Vec<Multiaddr>,
    /// Peers to contact first, with their `/p2p/<PeerId>` suffix. The
    /// daemon keeps a connection to each of them.
    #[serde(default)]
    pub bootstrap: Vec<Multiaddr>,
    /// Find other boxes on the LAN by mDNS (multicast on every interface).
    #[serde(default = "default_true")]
    pub mdns: bool,
    /// Ask the home router for a port mapping by UPnP.
    #[serde(default = "default_true")]
    pub upnp: bool,
    /// TCP port of the lane, where peers send and fetch the (already
    /// sealed) bodies of objects without a second layer of encryption; on
    /// the IP of the first TCP listen address. 0: any free port (it is told
    /// to peers per transfer). Forward a fixed one by hand to let peers
    /// outside the LAN use it; peers that cannot reach it use the encrypted
    /// stream instead.
    #[serde(default)]
    pub lane_port: u16,
    /// Offer the lane at all.
    #[serde(default = "default_true")]
    pub lane: bool,
}

/// How often background work runs. Each interval is randomised per object
/// around this value so that peers cannot predict when they are checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intervals {
    /// Challenge each host for one random segment about this often.
    #[serde(default = "default_audit", with = "duration")]
    pub audit: Duration,
    /// Download and verify each whole replica about this often.
    #[serde(default = "default_full_check", with = "duration")]
    pub full_check: Duration,
    /// Wait this long after the last manifest change before replicating it.
    #[serde(default = "default_manifest_debounce", with = "duration")]
    pub manifest_debounce: Duration,
    /// Look at what is owed to hosts this often and pay what passed the
    /// settle threshold.
    #[serde(default = "default_settle", with = "duration")]
    pub settle: Duration,
    /// Failed audits in a row after which a replica counts as lost and is
    /// replaced.
    #[serde(default = "default_repair_after_failures")]
    pub repair_after_failures: u32,
}

/// Space kept back from what is offered to peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reserves {
    /// Free space kept on every data disk, beyond the owner's own files.
    #[serde(default = "default_safety_margin")]
    pub safety_margin: ByteSize,
    /// Free space no data is ever written into, on each data disk (the
    /// owner's files included), because a full ext4 disk turns slow and
    /// fragile: this much, or `disk_percent` of the disk if that is more.
    #[serde(default = "default_disk_reserve")]
    pub disk: ByteSize,
    /// See `disk`.
    #[serde(default = "default_disk_reserve_percent")]
    pub disk_percent: u8,
}

impl Reserves {
    /// What bunker-disks keeps free on each disk.
    pub fn disk_policy(&self) -> bunker_disks::ReservePolicy {
        bunker_disks::ReservePolicy { min_bytes: self.disk.0, percent: self.disk_percent }
    }
}

fn default_disk_reserve() -> ByteSize {
    ByteSize(1 << 30)
}
fn default_disk_reserve_percent() -> u8 {
    2
}

fn default_panel_backend() -> PanelBackend {
    PanelBackend::Auto
}
fn default_i2c_bus() -> u8 {
    1
}
fn default_i2c_address() -> u8 {
    0x3C
}
fn default_buttons() -> Vec<u8> {
    vec![17]
}
fn default_led_pin() -> u8 {
    27
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/bunker")
}
fn default_log() -> String {
    "info".into()
}
fn default_web_addr() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8080))
}
fn default_listen() -> Vec<Multiaddr> {
    ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"]
        .iter()
        .map(|a| a.parse().expect("built-in listen address parses"))
        .collect()
}
fn default_audit() -> Duration {
    Duration::from_secs(3600)
}
fn default_full_check() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_manifest_debounce() -> Duration {
    Duration::from_secs(300)
}
fn default_safety_margin() -> ByteSize {
    ByteSize(2 << 30)
}
fn default_true() -> bool {
    true
}
fn default_settle() -> Duration {
    Duration::from_secs(600)
}
fn default_repair_after_failures() -> u32 {
    3
}
fn default_swap_grace() -> Duration {
    bunker_node::HostingTerms::default().swap_grace
}
fn default_price() -> u64 {
    10_000
}
fn default_retrieval_price() -> u64 {
    100_000
}
fn default_price_floor() -> u64 {
    1_000
}
fn default_ln_network() -> bunker_ln::Network {
    bunker_ln::Network::Bitcoin
}
fn default_settle_threshold() -> u64 {
    bunker_ln::config::default_settle_threshold_msat()
}
fn default_max_price() -> u64 {
    bunker_node::PlacementTerms::default().max_price_msat_per_gib_day
}
fn default_max_retrieval() -> u64 {
    bunker_node::PlacementTerms::default().max_retrieval_msat_per_gib
}
fn default_term() -> Duration {
    bunker_node::PlacementTerms::default().term
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            log: default_log(),
            web: WebConfig::default(),
            net: NetConfig::default(),
            intervals: Intervals::default(),
            reserves: Reserves::default(),
            panel: PanelSettings::default(),
            storage: StorageConfig::default(),
            hosting: HostingConfig::default(),
            ln: LnSettings::default(),
            placement: PlacementConfig::default(),
        }
    }
}
impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            max_price_msat_per_gib_day: default_max_price(),
            max_retrieval_msat_per_gib: default_max_retrieval(),
            term: default_term(),
            propose_swaps: bunker_node::PlacementTerms::default().propose_swaps,
        }
    }
}
impl Default for HostingConfig {
    fn default() -> Self {
        HostingConfig {
            price_msat_per_gib_day: default_price(),
            retrieval_msat_per_gib: default_retrieval_price(),
            price_floor_msat_per_gib_day: default_price_floor(),
            max_hosted: OptionalSize(None),
            swap_grace: default_swap_grace(),
        }
    }
}
impl Default for LnSettings {
    fn default() -> Self {
        LnSettings {
            network: default_ln_network(),
            chain: ChainSetting(None),
            listen: Vec::new(),
            settle_threshold_msat: default_settle_threshold(),
            lsps2: Lsps2Setting::default(),
        }
    }
}
impl Default for PanelSettings {
    fn default() -> Self {
        PanelSettings {
            backend: default_panel_backend(),
            i2c_bus: default_i2c_bus(),
            i2c_address: default_i2c_address(),
            buttons: default_buttons(),
            led_pin: default_led_pin(),
            shutdown_command: Vec::new(),
        }
    }
}
impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { addr: default_web_addr() }
    }
}
impl Default for NetConfig {
    fn default() -> Self {
        NetConfig { listen: default_listen(), bootstrap: Vec::new(), mdns: true, upnp: true, lane_port: 0, lane: true }
    }
}
impl Default for Intervals {
    fn default() -> Self {
        Intervals {
            audit: default_audit(),
            full_check: default_full_check(),
            manifest_debounce: default_manifest_debounce(),
            settle: default_settle(),
            repair_after_failures: default_repair_after_failures(),
        }
    }
}
impl Default for Reserves {
    fn default() -> Self {
        Reserves {
            safety_margin: default_safety_margin(),
            disk: default_disk_reserve(),
            disk_percent: default_disk_reserve_percent(),
        }
    }
}

/// Where a configuration value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The config file.
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
    /// A command-line flag, as typed.
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File(p) => write!(f, "config file {}", p.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Why the configuration could not be loaded. Each message is one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {path} line {line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A key that no version of Bunker knows.
    #[error("unknown config key `{key}` in {origin}")]
    UnknownKey {
        /// Dotted path of the key.
        key: String,
        /// Where it was set.
        origin: Origin,
    },
    /// A flag `--set` without `=`.
    #[error("--set takes KEY=VALUE, got {0:?}")]
    BadSetFlag(String),
    /// A key whose value has the wrong type or form.
    #[error("config key `{key}` ({origin}): {message}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// Where the bad value came from.
        origin: Origin,
        /// What is wrong with it.
        message: String,
    },
}

/// Values that override the file: environment variables and flags.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    entries: Vec<(String, String, Origin)>,
}

impl Overrides {
    /// Sets `key` (dotted path) to `raw`, written as TOML or as a bare string.
    pub fn set(&mut self, key: impl Into<String>, raw: impl Into<String>, origin: Origin) {
        self.entries.push((key.into(), raw.into(), origin));
    }

    /// Adds a `--set KEY=VALUE` flag.
    pub fn set_flag(&mut self, pair: &str) -> Result<(), ConfigError> {
        let (key, value) = pair.split_once('=').ok_or_else(|| ConfigError::BadSetFlag(pair.into()))?;
        let key = key.trim();
        self.set(key, value.trim(), Origin::Flag(format!("--set {key}")));
        Ok(())
    }
}

/// Loads the configuration from defaults, an optional file, the `BUNKER_*`
/// variables in `env`, and `overrides` (flags), in that order.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let defaults = toml::Table::try_from(Config::default()).expect("defaults serialise");
    let known = leaf_keys(&defaults);
    let mut table = defaults.clone();
    let mut origins: BTreeMap<String, Origin> = BTreeMap::new();

    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let parsed: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_owned(),
            line: e.span().map_or(1, |s| line_of(&text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        let origin = Origin::File(path.to_owned());
        for (key, value) in flatten(&parsed) {
            if !known.contains(&key) && !is_known_table(&defaults, &key) {
                return Err(ConfigError::UnknownKey { key, origin });
            }
            set_path(&mut table, &key, value);
            origins.insert(key, origin.clone());
        }
    }

    let env: BTreeMap<String, String> = env.into_iter().collect();
    for key in &known {
        let name = env_name(key);
        if let Some(raw) = env.get(&name) {
            set_path(&mut table, key, raw_value(raw));
            origins.insert(key.clone(), Origin::Env(name));
        }
    }

    for (key, raw, origin) in &overrides.entries {
        if !known.contains(key) {
            return Err(ConfigError::UnknownKey { key: key.clone(), origin: origin.clone() });
        }
        set_path(&mut table, key, raw_value(raw));
        origins.insert(key.clone(), origin.clone());
    }

    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        // `net.listen[0]` was set as `net.listen`.
        let leaf = key.split('[').next().unwrap_or(&key);
        let origin = origins
            .iter()
            .find(|(k, _)| *k == leaf || leaf.starts_with(&format!("{k}.")) || k.starts_with(&format!("{leaf}.")))
            .map(|(_, o)| o.clone())
            .unwrap_or(Origin::Default);
        ConfigError::Invalid { key, origin, message: e.into_inner().message().trim().to_string() }
    })
}

/// The environment variable that sets `key`.
pub fn env_name(key: &str) -> String {
    format!("BUNKER_{}", key.to_uppercase().replace(['.', '-'], "_"))
}

/// Every dotted leaf key of the built-in configuration, for `--help` and docs.
pub fn known_keys() -> Vec<String> {
    leaf_keys(&toml::Table::try_from(Config::default()).expect("defaults serialise"))
}

/// A value from the environment or a flag: TOML if it parses as a TOML value
/// (numbers, booleans, arrays), else the text itself as a string, so that
/// `BUNKER_WEB_ADDR=0.0.0.0:8080` needs no quotes.
fn raw_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn leaf_keys(table: &toml::Table) -> Vec<String> {
    flatten(table).into_iter().map(|(k, _)| k).collect()
}

/// Dotted leaf paths and their values. Arrays are leaves.
fn flatten(table: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(inner) => {
                for (ik, iv) in flatten(inner) {
                    out.push((format!("{k}.{ik}"), iv));
                }
            }
            other => out.push((k.clone(), other.clone())),
        }
    }
    out
}

/// True when `key` names a table of the defaults (an empty `[web]` section).
fn is_known_table(defaults: &toml::Table, key: &str) -> bool {
    let mut cur = defaults;
    for part in key.split('.') {
        match cur.get(part) {
            Some(toml::Value::Table(t)) => cur = t,
            _ => return false,
        }
    }
    true
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut cur = table;
    for part in parts {
        let entry = cur.entry(part.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
        if !entry.is_table() {
            *entry = toml::Value::Table(Default::default());
        }
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => unreachable!("made a table above"),
        };
    }
    cur.insert(last.to_string(), value);
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// A number of bytes, written in config as `"2 GiB"`, `"500 MB"` or a bare
/// integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("expected a size such as \"2 GiB\", got {s:?}"))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            other => return Err(format!("unknown size unit {other:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)")),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 4] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        for (name, size) in UNITS {
            if self.0 >= size && self.0 % size == 0 {
                return write!(f, "{} {name}", self.0 / size);
            }
        }
        write!(f, "{} B", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a size such as \"2 GiB\" or a number of bytes")
        })? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A size or nothing: `""` (no limit) or a size such as `"50 GiB"`.
/// Written as text either way, so the key exists in the defaults (and
/// `--print-config` shows it) even when unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptionalSize(pub Option<ByteSize>);

impl Serialize for OptionalSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(size) => s.collect_str(&size),
            None => s.serialize_str(""),
        }
    }
}

impl<'de> Deserialize<'de> for OptionalSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected \"\" (no limit), a size such as \"50 GiB\" or a number of bytes")
        })? {
            Raw::Int(n) => Ok(OptionalSize(Some(ByteSize(n)))),
            Raw::Text(s) if s.trim().is_empty() => Ok(OptionalSize(None)),
            Raw::Text(s) => s.parse().map(|b| OptionalSize(Some(b))).map_err(serde::de::Error::custom),
        }
    }
}

/// Where Lightning learns about the chain, as one line of text:
/// `none`, `esplora:<url>`, `electrum:<url>` or
/// `bitcoind:<user>:<password>@<host>:<port>`. `None` is Lightning off.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ChainSetting(pub Option<bunker_ln::ChainSource>);

impl fmt::Debug for ChainSetting {
    // bunker_ln::ChainSource's Debug hides the RPC password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("none"),
            Some(source) => write!(f, "{source:?}"),
        }
    }
}

impl std::str::FromStr for ChainSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        use bunker_ln::ChainSource;
        let s = s.trim();
        let form = "write none, esplora:<url>, electrum:<url> or bitcoind:<user>:<password>@<host>:<port>";
        if s == "none" {
            return Ok(ChainSetting(None));
        }
        let (kind, rest) = s.split_once(':').ok_or_else(|| format!("{s:?} is not a chain source: {form}"))?;
        let source = match kind {
            "esplora" | "electrum" if rest.is_empty() => return Err(format!("{kind}: the URL is missing: {form}")),
            "esplora" => ChainSource::Esplora { url: rest.to_string() },
            "electrum" => ChainSource::Electrum { url: rest.to_string() },
            "bitcoind" => {
                let bad = || "bitcoind: write bitcoind:<user>:<password>@<host>:<port>".to_string();
                let (creds, at) = rest.rsplit_once('@').ok_or_else(bad)?;
                let (user, password) = creds.split_once(':').ok_or_else(bad)?;
                let (host, port) = at.rsplit_once(':').ok_or_else(bad)?;
                let port: u16 = port.parse().map_err(|_| format!("bitcoind: port {port:?} is not a port number"))?;
                if user.is_empty() || host.is_empty() {
                    return Err(bad());
                }
                ChainSource::BitcoindRpc {
                    host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
                    port,
                    user: user.to_string(),
                    password: password.to_string(),
                }
            }
            other => return Err(format!("unknown chain source kind {other:?}: {form}")),
        };
        Ok(ChainSetting(Some(source)))
    }
}

impl fmt::Display for ChainSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use bunker_ln::ChainSource;
        match &self.0 {
            None => f.write_str("none"),
            Some(ChainSource::Esplora { url }) => write!(f, "esplora:{url}"),
            Some(ChainSource::Electrum { url }) => write!(f, "electrum:{url}"),
            Some(ChainSource::BitcoindRpc { host, port, user, password }) => {
                let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
                write!(f, "bitcoind:{user}:{password}@{host}:{port}")
            }
        }
    }
}

impl Serialize for ChainSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChainSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected text such as \"none\" or \"esplora:<url>\""))?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Durations written as `"90s"`, `"1h"`, `"30d"`, `"1h 30m"`.
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as \"90s\", \"1h\" or \"30d\"")
        })?;
        let parsed = humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration ({e}); write e.g. \"90s\", \"1h\" or \"30d\""
            ))
        })?;
        if parsed.is_zero() {
            return Err(serde::de::Error::custom("a zero interval would spin: use at least \"1s\""));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bunker.toml");
        std::fs::write(&path, text).unwrap();
        load(Some(&path), [], &Overrides::default())
    }

    #[test]
    fn no_file_gives_documented_defaults() {
        let cfg = load(None, [], &Overrides::default()).unwrap();
        assert_eq!(cfg, Config::default());
        assert_eq!(cfg.web.addr.port(), 8080);
        assert_eq!(cfg.intervals.audit, Duration::from_secs(3600));
    }

    #[test]
    fn example_file_is_the_defaults() {
        // The annotated example shipped with the daemon must not drift from the code.
        let text = include_str!("../bunker.example.toml");
        assert_eq!(load_text(text).unwrap(), Config::default());
    }

    #[test]
    fn file_values_are_read() {
        let cfg = load_text(
            "data_dir = \"/srv/b\"\n[web]\naddr = \"0.0.0.0:9000\"\n[intervals]\naudit = \"30s\"\n[reserves]\nsafety_margin = \"500 MB\"\n",
        )
        .unwrap();
        assert_eq!(cfg.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(cfg.web.addr, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(cfg.intervals.audit, Duration::from_secs(30));
        assert_eq!(cfg.reserves.safety_margin, ByteSize(500_000_000));
        // Keys the file does not name keep their defaults.
        assert_eq!(cfg.intervals.full_check, default_full_check());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load_text("[web]\nport = 80\n").unwrap_err();
        assert!(matches!(err, ConfigError::UnknownKey { ref key, .. } if key == "web.port"), "{err}");
        assert!(err.to_string().contains("web.port"), "{err}");
        let err = load_text("colour = \"blue\"\n").unwrap_err();
        assert!(err.to_string().contains("`colour`"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key_and_the_file() {
        let err = load_text("[intervals]\naudit = 5\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`intervals.audit`"), "{msg}");
        assert!(msg.contains("bunker.toml"), "{msg}");
        assert!(msg.contains("duration"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");

        let msg = load_text("[web]\naddr = \"localhost\"\n").unwrap_err().to_string();
        assert!(msg.contains("`web.addr`"), "{msg}");

        let msg = load_text("[net]\nlisten = [\"not an address\"]\n").unwrap_err().to_string();
        assert!(msg.contains("`net.listen[0]`") && msg.contains("bunker.toml"), "{msg}");

        let msg = load_text("[reserves]\nsafety_margin = \"3 parsecs\"\n").unwrap_err().to_string();
        assert!(msg.contains("`reserves.safety_margin`") && msg.contains("unit"), "{msg}");

        let msg = load_text("[intervals]\naudit = \"0s\"\n").unwrap_err().to_string();
        assert!(msg.contains("zero"), "{msg}");
    }

    #[test]
    fn syntax_error_gives_the_line() {
        let err = load_text("log = \"info\"\n[web\naddr = 1\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bunker.toml");
        std::fs::write(&path, "[web]\naddr = \"127.0.0.1:1000\"\n").unwrap();
        let env = [
            ("BUNKER_WEB_ADDR".to_string(), "127.0.0.1:2000".to_string()),
            ("BUNKER_INTERVALS_FULL_CHECK".to_string(), "7d".to_string()),
            ("BUNKER_UNRELATED".to_string(), "ignored".to_string()),
        ];
        let cfg = load(Some(&path), env.clone(), &Overrides::default()).unwrap();
        assert_eq!(cfg.web.addr.port(), 2000);
        assert_eq!(cfg.intervals.full_check, Duration::from_secs(7 * 86400));

        let mut flags = Overrides::default();
        flags.set("web.addr", "127.0.0.1:3000", Origin::Flag("--web-addr".into()));
        flags.set_flag("net.bootstrap=[\"/ip4/127.0.0.1/tcp/4001\"]").unwrap();
        let cfg = load(Some(&path), env, &flags).unwrap();
        assert_eq!(cfg.web.addr.port(), 3000);
        assert_eq!(cfg.net.bootstrap.len(), 1);
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        let env = [("BUNKER_WEB_ADDR".to_string(), "nowhere".to_string())];
        let msg = load(None, env, &Overrides::default()).unwrap_err().to_string();
        assert!(msg.contains("`web.addr`") && msg.contains("BUNKER_WEB_ADDR"), "{msg}");
    }

    #[test]
    fn unknown_set_flag_is_refused() {
        let mut flags = Overrides::default();
        flags.set_flag("web.prot=80").unwrap();
        let msg = load(None, [], &flags).unwrap_err().to_string();
        assert!(msg.contains("`web.prot`") && msg.contains("--set"), "{msg}");
        assert!(Overrides::default().set_flag("novalue").is_err());
    }

    #[test]
    fn panel_backend_is_checked() {
        let cfg = load_text("[panel]\nbackend = \"simulator\"\nbuttons = [17, 22]\n").unwrap();
        assert_eq!(cfg.panel.backend, PanelBackend::Simulator);
        assert_eq!(cfg.panel.buttons, vec![17, 22]);
        let msg = load_text("[panel]\nbackend = \"lcd\"\n").unwrap_err().to_string();
        assert!(msg.contains("`panel.backend`") && msg.contains("simulator"), "{msg}");
        let msg = load_text("[panel]\ni2c_address = 300\n").unwrap_err().to_string();
        assert!(msg.contains("`panel.i2c_address`"), "{msg}");
    }

    #[test]
    fn engine_keys_reach_the_node_and_lightning_configs() {
        let cfg = load_text(
            "data_dir = \"/srv/b\"\n[intervals]\nsettle = \"30s\"\nrepair_after_failures = 5\naudit = \"2s\"\n\
             [hosting]\nprice_msat_per_gib_day = 7\nmax_hosted = \"50 GiB\"\nswap_grace = \"2d\"\n\
             [ln]\nnetwork = \"regtest\"\nchain = \"bitcoind:u:p@127.0.0.1:18443\"\nlisten = [\"127.0.0.1:9735\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.store_root(), PathBuf::from("/srv/b/store"));
        let node = cfg.node_config();
        assert_eq!(node.store_root, PathBuf::from("/srv/b/store"));
        assert_eq!(node.settle_interval, Duration::from_secs(30));
        assert_eq!(node.audit_interval, Duration::from_secs(2));
        assert_eq!(node.repair_after_failures, 5);
        assert_eq!(node.hosting.price_msat_per_gib_day, 7);
        assert_eq!(node.hosting.max_hosted_bytes, Some(50 << 30));
        assert_eq!(node.hosting.swap_grace, Duration::from_secs(2 * 86_400));
        assert_eq!(node.hosting.safety_margin_bytes, 2 << 30);
        let ln = cfg.ln_config().expect("a chain source turns Lightning on");
        assert_eq!(ln.data_dir, PathBuf::from("/srv/b/ln"));
        assert_eq!(ln.network, bunker_ln::Network::Regtest);
        assert_eq!(
            ln.chain,
            bunker_ln::ChainSource::BitcoindRpc { host: "127.0.0.1".into(), port: 18443, user: "u".into(), password: "p".into() }
        );
        assert_eq!(ln.listen, vec!["127.0.0.1:9735".parse().unwrap()]);
        // The password never shows in Debug output (log lines).
        assert!(!format!("{cfg:?}").contains(":p@"), "{cfg:?}");

        let cfg = load_text("[storage]\nroot = \"/mnt/disk1/bunker\"\n").unwrap();
        assert_eq!(cfg.node_config().store_root, PathBuf::from("/mnt/disk1/bunker"));
        assert_eq!(cfg.node_config().hosting.max_hosted_bytes, None);
        assert!(cfg.ln_config().is_none(), "chain = none is Lightning off");
    }

    #[test]
    fn chain_sources_parse_print_and_refuse_nonsense() {
        for text in ["none", "esplora:https://blockstream.info/api", "electrum:ssl://e.example:50002", "bitcoind:u:p:w@h:1"] {
            let parsed: ChainSetting = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        let bitcoind: ChainSetting = "bitcoind:u:p:w@h:1".parse().unwrap();
        assert!(matches!(bitcoind.0, Some(bunker_ln::ChainSource::BitcoindRpc { ref password, .. }) if password == "p:w"));
        for (text, key) in [
            ("[ln]\nchain = \"bitcoind:u@h:1\"\n", "ln.chain"),
            ("[ln]\nchain = \"bitcoind:u:p@h:port\"\n", "ln.chain"),
            ("[ln]\nchain = \"esplora:\"\n", "ln.chain"),
            ("[ln]\nchain = \"lnd:x\"\n", "ln.chain"),
            ("[ln]\nnetwork = \"mainnet\"\n", "ln.network"),
            ("[ln]\nlisten = [\"nowhere\"]\n", "ln.listen"),
            ("[hosting]\nmax_hosted = \"lots\"\n", "hosting.max_hosted"),
            ("[intervals]\nrepair_after_failures = -1\n", "intervals.repair_after_failures"),
            ("[intervals]\nsettle = \"0s\"\n", "intervals.settle"),
        ] {
            let msg = load_text(text).unwrap_err().to_string();
            assert!(msg.contains(&format!("`{key}")) && msg.contains("bunker.toml"), "{text:?}: {msg}");
        }
        let env = [("BUNKER_LN_CHAIN".to_string(), "esplora:http://127.0.0.1:3002".to_string())];
        let cfg = load(None, env, &Overrides::default()).unwrap();
        assert_eq!(cfg.ln.chain.to_string(), "esplora:http://127.0.0.1:3002");
    }

    #[test]
    fn an_lsps2_provider_reaches_lightning_and_its_token_stays_hidden() {
        let id = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        let cfg = load_text(&format!(
            "[ln]\nchain = \"esplora:http://127.0.0.1:3002\"\nlsps2 = {{ node_id = \"{id}\", address = \"127.0.0.1:9735\", token = \"s3cret-token\" }}\n"
        ))
        .unwrap();
        let lsp = cfg.ln_config().unwrap().lsps2.expect("the provider reaches bunker-ln");
        assert_eq!(lsp.node_id, id);
        assert_eq!(lsp.address, "127.0.0.1:9735".parse().unwrap());
        assert_eq!(lsp.token.as_deref(), Some("s3cret-token"));
        assert!(!format!("{cfg:?}").contains("s3cret"), "the token never shows in Debug output: {cfg:?}");
        // Without a token, and through the environment.
        let env = [
            ("BUNKER_LN_CHAIN".to_string(), "esplora:http://127.0.0.1:3002".to_string()),
            ("BUNKER_LN_LSPS2_NODE_ID".to_string(), id.to_uppercase()),
            ("BUNKER_LN_LSPS2_ADDRESS".to_string(), "[::1]:9735".to_string()),
        ];
        let lsp = load(None, env, &Overrides::default()).unwrap().ln_config().unwrap().lsps2.unwrap();
        assert_eq!((lsp.node_id.as_str(), lsp.token), (id, None), "node id normalised to lower case");
        // None by default.
        assert!(load_text("[ln]\nchain = \"esplora:http://127.0.0.1:3002\"\n").unwrap().ln_config().unwrap().lsps2.is_none());
        let host_name = format!("[ln]\nlsps2 = {{ node_id = \"{id}\", address = \"lsp.example.com:9735\" }}\n");
        let no_address = format!("[ln]\nlsps2 = {{ node_id = \"{id}\" }}\n");
        for (text, key, words) in [
            ("[ln]\nlsps2 = { node_id = \"02abc\", address = \"127.0.0.1:9735\" }\n", "ln.lsps2.node_id", "66 hex digits"),
            (host_name.as_str(), "ln.lsps2.address", "ip:port"),
            (no_address.as_str(), "ln.lsps2", "address is empty"),
            ("[ln]\nlsps2 = { address = \"127.0.0.1:9735\" }\n", "ln.lsps2", "node_id is empty"),
            ("[ln]\nlsps2 = { token = \"t\" }\n", "ln.lsps2", "needs its provider"),
            ("[ln]\nlsps2 = { node_id = 2 }\n", "ln.lsps2.node_id", "as text"),
            ("[ln]\nlsps2 = { url = \"x\" }\n", "ln.lsps2.url", "unknown"),
        ] {
            let msg = load_text(text).unwrap_err().to_string();
            assert!(msg.contains(&format!("`{key}`")) && msg.contains(words), "{text:?}: {msg}");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }

    #[test]
    fn placement_caps_reach_the_engine_and_bad_ones_are_refused() {
        let cfg = load(None, [], &Overrides::default()).unwrap();
        assert_eq!(cfg.node_config().placement, bunker_node::PlacementTerms::default(), "defaults are the engine's");
        let cfg = load_text(
            "[placement]\nmax_price_msat_per_gib_day = 5000\nmax_retrieval_msat_per_gib = 20000\nterm = \"90d\"\npropose_swaps = true\n",
        )
        .unwrap();
        let p = cfg.node_config().placement;
        assert_eq!(p.max_price_msat_per_gib_day, 5000);
        assert_eq!(p.max_retrieval_msat_per_gib, 20_000);
        assert_eq!(p.term, Duration::from_secs(90 * 86_400));
        assert_eq!(toml::Table::try_from(&cfg).unwrap()["placement"]["term"].as_str(), Some("90d"), "shown in days");
        assert!(p.propose_swaps);
        let env = [("BUNKER_PLACEMENT_MAX_PRICE_MSAT_PER_GIB_DAY".to_string(), "777".to_string())];
        let cfg = load(None, env, &Overrides::default()).unwrap();
        assert_eq!(cfg.node_config().placement.max_price_msat_per_gib_day, 777);
        for (text, key, words) in [
            ("[placement]\nmax_price_msat_per_gib_day = -1\n", "placement.max_price_msat_per_gib_day", ""),
            ("[placement]\nmax_retrieval_msat_per_gib = \"lots\"\n", "placement.max_retrieval_msat_per_gib", ""),
            ("[placement]\nterm = \"1h\"\n", "placement.term", "1 day to 10 years"),
            ("[placement]\nterm = \"20years\"\n", "placement.term", "1 day to 10 years"),
            ("[placement]\nterm = \"soon\"\n", "placement.term", "not a duration"),
            ("[placement]\npropose_swaps = \"maybe\"\n", "placement.propose_swaps", ""),
            ("[placement]\nmax_price = 1\n", "placement.max_price", "unknown"),
        ] {
            let msg = load_text(text).unwrap_err().to_string();
            assert!(msg.contains(&format!("`{key}`")) && msg.contains("bunker.toml") && msg.contains(words), "{text:?}: {msg}");
        }
    }

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!("2 GiB".parse::<ByteSize>().unwrap(), ByteSize(2 << 30));
        assert_eq!("10".parse::<ByteSize>().unwrap(), ByteSize(10));
        assert_eq!(ByteSize(2 << 30).to_string(), "2 GiB");
        assert!("99999999999999 TiB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn env_names_follow_the_keys() {
        assert_eq!(env_name("data_dir"), "BUNKER_DATA_DIR");
        assert_eq!(env_name("web.addr"), "BUNKER_WEB_ADDR");
        assert!(known_keys().contains(&"intervals.manifest_debounce".to_string()));
    }
}
