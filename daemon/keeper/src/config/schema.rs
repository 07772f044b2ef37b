//! The configuration schema. Key names are keepalived's keywords in lower case, so a keepalived
//! operator reads a keeper file at sight; named things are tables keyed by name so that one field
//! can be overridden from the environment (`KEEPER_VRRP_INSTANCE__VI_1__PRIORITY=50`).
//!
//! Numbers that have a valid range are read as `i64` and checked in `validate`, so that
//! `virtual_router_id = 0` says "must be 1-255" rather than a type error. Required keys are
//! `Option` for the same reason: `validate` names what is missing, with the place.
//! Defaults are keepalived's unless a comment says why not; `docs/configuration.md` lists them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::duration::Secs;
pub use super::named::Named;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Config {
    #[serde(default)]
    pub global: Global,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vrrp_instance: BTreeMap<String, VrrpInstance>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vrrp_sync_group: BTreeMap<String, SyncGroup>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vrrp_script: BTreeMap<String, VrrpScript>,
    // --- tracked files and processes (read by `track`) -----------------------------------------
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vrrp_track_file: BTreeMap<String, VrrpTrackFile>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vrrp_track_process: BTreeMap<String, VrrpTrackProcess>,
    // --- end of tracked files and processes ----------------------------------------------------
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    /// Each virtual server shared (`Arc`): the LVS actor's copy of the configuration and a reload
    /// that re-read one virtual server (see `config::reload`) share every other one.
    pub virtual_server: BTreeMap<String, std::sync::Arc<VirtualServer>>,
    /// `virtual_server_group NAME { … }`: the members, in keepalived syntax, each `"IP [PORT]"`,
    /// `"IP-LAST [PORT]"` (IPv4: last byte, decimal; IPv6: last group, hex), `"IP-IP [PORT]"`,
    /// `"IP/PREFIX [PORT]"`, or `"fwmark N [inet|inet6]"`. A `virtual_server` with
    /// `group = NAME` becomes one IPVS service per member, all with its real servers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub virtual_server_group: BTreeMap<String, Vec<String>>,
}

fn default_true() -> bool {
    true
}
fn default_smtp_timeout() -> Secs {
    Secs::from_secs(30)
}
fn default_notify_script_timeout() -> Secs {
    Secs::from_secs(30)
}
fn default_garp_delay() -> Secs {
    Secs::from_secs(5)
}
fn default_garp_repeat() -> i64 {
    5
}
fn default_one() -> i64 {
    1
}
fn default_vrrp_version() -> i64 {
    2
}
fn default_control_socket() -> PathBuf {
    PathBuf::from("/run/keeper/keeper.sock")
}

/// `global_defs` in keepalived.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Global {
    /// Identifies this node in notifications (keepalived: the host name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notification_email: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_email_from: Option<String>,
    /// `host` or `host:port` (port 25 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_helo_name: Option<String>,
    #[serde(default = "default_smtp_timeout")]
    pub smtp_connect_timeout: Secs,
    /// Default `smtp_alert` of instances and groups (keepalived: `smtp_alert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_alert: Option<bool>,
    /// Default `smtp_alert` of VRRP instances and groups; wins over `smtp_alert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_alert_vrrp: Option<bool>,
    /// VRRP version for instances that do not set `version`: 2 or 3.
    #[serde(default = "default_vrrp_version")]
    pub vrrp_version: i64,
    #[serde(default)]
    pub vrrp_skip_check_adv_addr: bool,
    /// The RFC's strict checks only; keeper never writes firewall rules.
    #[serde(default)]
    pub vrrp_strict: bool,
    /// Delay between gratuitous ARPs of one burst.
    #[serde(default)]
    pub vrrp_garp_interval: Secs,
    /// Delay between unsolicited neighbour advertisements of one burst.
    #[serde(default)]
    pub vrrp_gna_interval: Secs,
    #[serde(default = "default_garp_delay")]
    pub vrrp_garp_master_delay: Secs,
    #[serde(default = "default_garp_repeat")]
    pub vrrp_garp_master_repeat: i64,
    /// Periodic GARP refresh while MASTER; 0 is off.
    #[serde(default)]
    pub vrrp_garp_master_refresh: Secs,
    #[serde(default = "default_one")]
    pub vrrp_garp_master_refresh_repeat: i64,
    /// On by default here (off in keepalived): it heals split brain in one advert interval.
    #[serde(default = "default_true")]
    pub vrrp_higher_prio_send_advert: bool,
    #[serde(default)]
    pub vrrp_startup_delay: Secs,
    /// Real-time (SCHED_RR) priority for the daemon, 1-99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrrp_rt_priority: Option<i64>,
    /// Lock the daemon's memory (mlockall).
    #[serde(default)]
    pub vrrp_no_swap: bool,
    /// Wait for interfaces that do not exist yet instead of failing.
    #[serde(default)]
    pub dynamic_interfaces: bool,
    /// At start, delete every IPVS service that is not configured (keepalived flushes the
    /// table; keeper adopts configured services in place instead, so they never disappear).
    #[serde(default)]
    pub lvs_flush: bool,
    /// At stop: `false` (default) leaves the table as it is, so a restart never empties it;
    /// `true` or `"ALL"` flushes the whole table; `"VS"` deletes keeperd's own services.
    #[serde(default)]
    pub lvs_flush_on_stop: FlushOnStop,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvs_timeouts: Option<LvsTimeouts>,
    /// The IPVS connection sync daemon (keepalived's newer form of
    /// `vrrp_instance.*.lvs_sync_daemon_interface`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    /// keeper's own: set the kernel's `net.ipv4.vs.expire_quiescent_template` to 1 when IPVS is
    /// in use, so that persistence templates pointing at a real server with weight 0
    /// (`inhibit_on_failure`) expire and clients do not stay on a dead server. `false` leaves
    /// the sysctl as it is.
    #[serde(default = "default_true")]
    pub expire_quiescent_template: bool,
    /// User (and optionally `user:group`) that runs notify, track and check scripts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_fifo: Option<PathBuf>,
    // --- keeper's own keys -------------------------------------------------------------------
    /// Notify scripts running longer are killed with their process group (keepalived: no limit).
    #[serde(default = "default_notify_script_timeout")]
    pub notify_script_timeout: Secs,
    /// Unprivileged user the daemon switches to when started as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default = "default_control_socket")]
    pub control_socket: PathBuf,
    /// Group allowed to use the control socket (mode 0660).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_socket_group: Option<String>,
    /// Prometheus metrics listen address, e.g. `127.0.0.1:9650`; off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter; `RUST_LOG` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            router_id: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_helo_name: None,
            smtp_connect_timeout: default_smtp_timeout(),
            smtp_alert: None,
            smtp_alert_vrrp: None,
            vrrp_version: default_vrrp_version(),
            vrrp_skip_check_adv_addr: false,
            vrrp_strict: false,
            vrrp_garp_interval: Secs::default(),
            vrrp_gna_interval: Secs::default(),
            vrrp_garp_master_delay: default_garp_delay(),
            vrrp_garp_master_repeat: default_garp_repeat(),
            vrrp_garp_master_refresh: Secs::default(),
            vrrp_garp_master_refresh_repeat: default_one(),
            vrrp_higher_prio_send_advert: true,
            vrrp_startup_delay: Secs::default(),
            vrrp_rt_priority: None,
            vrrp_no_swap: false,
            dynamic_interfaces: false,
            lvs_flush: false,
            lvs_flush_on_stop: FlushOnStop::No,
            lvs_timeouts: None,
            lvs_sync_daemon: None,
            expire_quiescent_template: true,
            script_user: None,
            notify_fifo: None,
            notify_script_timeout: default_notify_script_timeout(),
            user: None,
            control_socket: default_control_socket(),
            control_socket_group: None,
            metrics_listen: None,
            log_level: None,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct LvsTimeouts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcpfin: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<Secs>,
}

/// `lvs_flush_on_stop`: keepalived's bare keyword (`true`), `ALL` or `VS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlushOnStop {
    #[default]
    No,
    /// Flush the whole IPVS table.
    All,
    /// Delete the services keeperd manages, nothing else.
    Vs,
}

impl<'de> Deserialize<'de> for FlushOnStop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Visitor};
        struct V;
        impl Visitor<'_> for V {
            type Value = FlushOnStop;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false, \"ALL\" or \"VS\"")
            }
            fn visit_bool<E: Error>(self, v: bool) -> Result<FlushOnStop, E> {
                Ok(if v { FlushOnStop::All } else { FlushOnStop::No })
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<FlushOnStop, E> {
                match v {
                    "ALL" | "all" | "true" => Ok(FlushOnStop::All),
                    "VS" | "vs" => Ok(FlushOnStop::Vs),
                    "false" => Ok(FlushOnStop::No),
                    _ => Err(E::custom(format!(
                        "unknown value {v:?}, expected true, false, \"ALL\" or \"VS\""
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for FlushOnStop {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FlushOnStop::No => s.serialize_bool(false),
            FlushOnStop::All => s.serialize_bool(true),
            FlushOnStop::Vs => s.serialize_str("VS"),
        }
    }
}

/// `lvs_sync_daemon INTERFACE [inst VRRP_INSTANCE] [id SYNC_ID] [maxlen LEN] [port PORT]
/// [ttl TTL] [group ADDR]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct LvsSyncDaemon {
    /// Interface the sync messages use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The VRRP instance whose state drives the daemon: master daemon while it is MASTER,
    /// backup daemon otherwise. Without it both daemons run all the time (keepalived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inst: Option<String>,
    /// Sync ID 0-255; default the instance's VRID (0 without an instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Largest sync message payload (kernel default when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxlen: Option<i64>,
    /// UDP port (kernel default 8848).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// Multicast TTL (kernel default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// Multicast group (kernel default 224.0.0.81).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IpAddr>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum InitialState {
    Master,
    Backup,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthType {
    /// Simple text password (VRRPv2 only).
    Pass,
    /// IPsec AH: accepted by keepalived, deprecated by RFC 3768; not supported here.
    Ah,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Authentication {
    pub auth_type: AuthType,
    /// Up to 8 characters; longer is an error (keepalived truncates silently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_pass: Option<String>,
}

/// `vrrp_instance NAME { … }`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct VrrpInstance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<InitialState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// 2 or 3; `global.vrrp_version` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_router_id: Option<i64>,
    /// 1-255, default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Default 1 s. v2: whole seconds 1-255; v3: 10 ms steps up to 40.95 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advert_int: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// keepalived syntax: `"192.168.235.100/24 dev ens33 label ens33:2"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_ipaddress: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_ipaddress_excluded: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_routes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_rules: Vec<String>,
    #[serde(default)]
    pub nopreempt: bool,
    #[serde(default)]
    pub preempt_delay: Secs,
    /// Accept packets to the VIPs when MASTER and not the address owner (v3 accept mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcast_src_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unicast_src_ip: Option<IpAddr>,
    /// keepalived syntax per peer: `"10.0.0.2"` or `"10.0.0.2 min_ttl 254 max_ttl 255"`.
    /// Present but empty is an error: never a silent fallback to multicast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unicast_peer: Option<Vec<String>>,
    /// `"eth1"` or `"eth1 weight -20"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_interface: Vec<String>,
    /// `"chk_haproxy"` or `"chk_haproxy weight -20"`; names a `vrrp_script`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_script: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_file: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_process: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_master: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_backup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_fault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_stop: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    /// Default: `global.smtp_alert_vrrp`, else `global.smtp_alert`, else false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_alert: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvs_sync_daemon_interface: Option<String>,
    /// `true`, or the VMAC interface's name (default `vrrp.VRID`).
    #[serde(default, skip_serializing_if = "UseVmac::is_off")]
    pub use_vmac: UseVmac,
    #[serde(default)]
    pub vmac_xmit_base: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garp_master_delay: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garp_master_repeat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garp_master_refresh: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garp_master_refresh_repeat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub higher_prio_send_advert: Option<bool>,
    #[serde(default)]
    pub dont_track_primary: bool,
}

/// keepalived's `use_vmac [NAME]`: a flag or the interface name.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum UseVmac {
    Flag(bool),
    Name(String),
}

impl Default for UseVmac {
    fn default() -> Self {
        UseVmac::Flag(false)
    }
}

impl UseVmac {
    pub fn is_off(&self) -> bool {
        self.name(0).is_none()
    }

    /// The VMAC's name if enabled (`vrrp.VRID` unless named). From the environment a flag is
    /// the string "true" or "false": those are flags, not names.
    pub fn name(&self, vrid: u8) -> Option<String> {
        match self {
            UseVmac::Flag(true) => Some(format!("vrrp.{vrid}")),
            UseVmac::Flag(false) => None,
            UseVmac::Name(n) => match n.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Some(format!("vrrp.{vrid}")),
                "false" | "no" | "off" | "0" | "" => None,
                _ => Some(n.clone()),
            },
        }
    }
}

/// `vrrp_sync_group NAME { group { … } }`: members move between states together.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct SyncGroup {
    #[serde(default)]
    pub group: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_master: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_backup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_fault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_stop: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    /// Default: `global.smtp_alert_vrrp`, else `global.smtp_alert`, else false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_alert: Option<bool>,
    /// Let tracker weights of the members apply (keepalived: otherwise weighted trackers of
    /// a group member are turned into fault trackers or ignored, with a warning).
    #[serde(default)]
    pub sync_group_tracking_weight: bool,
}

fn default_script_interval() -> Secs {
    Secs::from_secs(1)
}

/// `vrrp_script NAME { … }`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct VrrpScript {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    #[serde(default = "default_script_interval")]
    pub interval: Secs,
    /// Default: the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Secs>,
    /// -253..253; 0 means a failing script puts the instance in FAULT.
    #[serde(default)]
    pub weight: i64,
    #[serde(default = "default_one")]
    pub rise: i64,
    #[serde(default = "default_one")]
    pub fall: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub init_fail: bool,
}

// --- tracked files and processes (read by `track`) ---------------------------------------------

/// `vrrp_track_file NAME { file PATH; weight N [reverse]; init_file [VALUE] [overwrite] }`
/// (keepalived 2.x also calls it `track_file`). The file holds an integer.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct VrrpTrackFile {
    /// Absolute path; its directory must exist (the file itself may appear later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// -254..254, default 1: the value read is multiplied by it; 0 means non-zero is FAULT.
    #[serde(default = "default_one")]
    pub weight: i64,
    /// keepalived's `weight N reverse`.
    #[serde(default)]
    pub reverse: bool,
    /// Write the value to the file at start when it does not exist (or always, `overwrite`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_file: Option<InitFile>,
}

/// `init_file [VALUE] [overwrite]`. Written `init_file = true` (value 0), `init_file = 5`, or as
/// keepalived's words in a string: `init_file = "5 overwrite"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InitFile {
    pub value: i64,
    pub overwrite: bool,
}

impl InitFile {
    fn parse_words(s: &str) -> Result<InitFile, String> {
        let mut init = InitFile::default();
        for word in s.split_whitespace() {
            match word {
                "overwrite" => init.overwrite = true,
                "true" | "yes" | "on" => {}
                w => {
                    init.value = w
                        .parse::<i32>()
                        .map_err(|_| {
                            format!("invalid init_file word {w:?}: a 32-bit integer or `overwrite`")
                        })?
                        .into()
                }
            }
        }
        Ok(init)
    }
}

impl<'de> Deserialize<'de> for InitFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Visitor};
        struct V;
        impl Visitor<'_> for V {
            type Value = InitFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, an integer, or a string such as \"5 overwrite\"")
            }
            fn visit_bool<E: Error>(self, v: bool) -> Result<InitFile, E> {
                if v {
                    Ok(InitFile::default())
                } else {
                    Err(E::custom(
                        "init_file = false: remove the key to leave the file alone",
                    ))
                }
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<InitFile, E> {
                i32::try_from(v)
                    .map(|v| InitFile {
                        value: v.into(),
                        overwrite: false,
                    })
                    .map_err(|_| E::custom(format!("init_file value {v} is not a 32-bit integer")))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<InitFile, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<InitFile, E> {
                InitFile::parse_words(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for InitFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.overwrite {
            s.serialize_str(&format!("{} overwrite", self.value))
        } else {
            s.serialize_i64(self.value)
        }
    }
}

/// keepalived's `param_match`: how the configured parameters of `process` are compared with a
/// process's command line.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ParamMatch {
    /// The parameters are exactly the configured ones (keepalived: `param_match` alone; the
    /// default when `process` has parameters).
    Exact,
    /// The first parameters are the configured ones; more may follow.
    Partial,
    /// As `partial`, and the last configured parameter need only begin the process's one.
    Initial,
}

/// `vrrp_track_process NAME { process NAME [PARAMS…]; param_match; weight; quorum; quorum_max;
/// delay; terminate_delay; fork_delay; full_command }`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct VrrpTrackProcess {
    /// keepalived's words: `"haproxy"` or `"/usr/bin/python3 /srv/app.py"` (quotes group words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_match: Option<ParamMatch>,
    /// -254..254, default 0 (too few or too many processes is FAULT).
    #[serde(default)]
    pub weight: i64,
    #[serde(default)]
    pub reverse: bool,
    /// Minimum number of processes, 1..65535, default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<i64>,
    /// Maximum number of processes, 0..65535, default unlimited; 0 means "must not run".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_max: Option<i64>,
    /// Sets both `fork_delay` and `terminate_delay` (which win when also set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Secs>,
    /// How long a quorum change caused by a process exiting waits before it is reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminate_delay: Option<Secs>,
    /// How long a quorum change caused by a tracked process forking waits before it is reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_delay: Option<Secs>,
    /// Match the command line's first word instead of the process name (`comm`).
    #[serde(default)]
    pub full_command: bool,
}

// --- end of tracked files and processes --------------------------------------------------------

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum LbKind {
    #[default]
    Nat,
    Dr,
    Tun,
}

/// IPVS schedulers (`lb_algo`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LbAlgo {
    Rr,
    Wrr,
    Lc,
    #[default]
    Wlc,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Sed,
    Nq,
    Mh,
    Fo,
    Ovf,
}

/// `ip_family` of a firewall-mark virtual server.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    Inet,
    Inet6,
}

fn default_delay_loop() -> Secs {
    Secs::from_secs(60)
}

/// `virtual_server IP PORT { … }`; the address is in fields: `ip` + `port`, `fwmark`, or `group`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct VirtualServer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default)]
    pub protocol: Protocol,
    /// Interval between health checks of each real server.
    #[serde(default = "default_delay_loop")]
    pub delay_loop: Secs,
    #[serde(default)]
    pub lb_algo: LbAlgo,
    #[serde(default)]
    pub lb_kind: LbKind,
    /// Scheduler flags of `sh` and `mh` (keepalived's keywords; ipvsadm's `-b`).
    #[serde(default, rename = "sh-port")]
    pub sh_port: bool,
    #[serde(default, rename = "sh-fallback")]
    pub sh_fallback: bool,
    #[serde(default, rename = "mh-port")]
    pub mh_port: bool,
    #[serde(default, rename = "mh-fallback")]
    pub mh_fallback: bool,
    /// One-packet scheduling (UDP: every datagram is scheduled).
    #[serde(default)]
    pub ops: bool,
    /// Address family of a `fwmark` service: `inet` or `inet6`; default the real servers'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family: Option<IpFamily>,
    /// Persistence engine, e.g. `sip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_engine: Option<String>,
    /// Persistence in seconds; 0 or unset is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_timeout: Option<Secs>,
    /// Netmask for persistence, e.g. `"255.255.255.0"` or a prefix length for IPv6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_granularity: Option<String>,
    /// `"IP PORT"`: used when no real server is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorry_server: Option<String>,
    /// Keep the sorry server in the table with weight 0 while it is not needed.
    #[serde(default)]
    pub sorry_server_inhibit: bool,
    /// Forwarding of the sorry server; default `lb_kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorry_server_lvs_method: Option<LbKind>,
    /// Default for the real servers: weight 0 instead of removal on failure.
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// Real servers start DOWN until their first successful check.
    #[serde(default)]
    pub alpha: bool,
    /// Run `notify_down` and quorum-down actions at shutdown.
    #[serde(default)]
    pub omega: bool,
    #[serde(default = "default_one")]
    pub quorum: i64,
    #[serde(default)]
    pub hysteresis: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_up: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_down: Option<String>,
    /// Default `Host:` for the HTTP checks of this virtual server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
    #[serde(default)]
    pub ha_suspend: bool,
    // --- health-check defaults (check/plan.rs): a checker's key wins over its real server's,
    // which wins over these, as in keepalived.
    /// Default 5 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_before_retry: Option<Secs>,
    /// Default: the checker's delay_loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Secs>,
    // --- end of health-check defaults
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub real_server: BTreeMap<String, RealServer>,
}

/// `real_server IP PORT { … }`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct RealServer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Default: the virtual server's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default = "default_one")]
    pub weight: i64,
    /// Default: the virtual server's `lb_kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lb_kind: Option<LbKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inhibit_on_failure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uthreshold: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lthreshold: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_up: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_down: Option<String>,
    // --- health-check defaults for this real server's checkers (check/plan.rs)
    /// Default: the virtual server's `alpha`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<bool>,
    /// Default: the virtual server's `delay_loop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_loop: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_before_retry: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Secs>,
    /// Default `Host:` for this real server's HTTP checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
    // --- end of health-check defaults
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_check: Option<Box<TcpCheck>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<Box<HttpCheck>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_get: Option<Box<HttpCheck>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misc_check: Option<Box<MiscCheck>>,
    // --- health checks II (check/): UDP, DNS, ICMP, SMTP and file checkers. Boxed: most real
    // servers have none of them, and inline they would add 750 bytes to every real server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_check: Option<Box<UdpCheck>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_check: Option<Box<DnsCheck>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ping_check: Option<Box<PingCheck>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_check: Option<Box<SmtpCheck>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_check: Option<Box<FileCheck>>,
    // --- end of health checks II
}

/// `TCP_CHECK { … }`: a connect.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct TcpCheck {
    /// Default 5 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Secs>,
    /// Consecutive failed attempts before the server is DOWN (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
    /// Old name of `retry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nb_get_retry: Option<i64>,
    /// Default 1 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_before_retry: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindto: Option<IpAddr>,
    /// Default: the real server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_loop: Option<Secs>,
    /// Default: the real server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<bool>,
}

/// `HTTP_GET` / `SSL_GET { url { … } … }`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct HttpCheck {
    /// Named sub-tables, one per `url { … }` block; all must pass.
    #[serde(default)]
    pub url: Named<HttpUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nb_get_retry: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_before_retry: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindto: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
    /// TLS only: server name sent in SNI (default: `virtualhost`, else none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// TLS only: verify the server certificate (default false, as keepalived).
    #[serde(default)]
    pub verify_cert: bool,
    /// TLS only, with `verify_cert`: PEM file of the certificates to trust (default: the
    /// system's trust store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Default: the real server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_loop: Option<Secs>,
    /// Default: the real server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct HttpUrl {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `200`, `"200-299 401"`, or an array of those; default 200-299.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<StatusCodes>,
    /// MD5 of the body, hex, as keepalived's genhash prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtualhost: Option<String>,
}

/// `MISC_CHECK { misc_path …; misc_timeout …; misc_dynamic }`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct MiscCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misc_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misc_timeout: Option<Secs>,
    /// Exit code 0 = up at configured weight, 1 = down, 2-255 = up with weight (code - 2).
    #[serde(default)]
    pub misc_dynamic: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_before_retry: Option<Secs>,
    /// Default: the real server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_loop: Option<Secs>,
    /// Default: the real server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<bool>,
}

// --- health checks II (check/) ----------------------------------------------------------------

/// `UDP_CHECK { … }`: a datagram sent; an ICMP error fails, and with `require_reply` so does
/// silence or a reply that does not match.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct UdpCheck {
    /// Hex octets to send, spaces allowed (`"de ad be ef"`); default 32 bytes of
    /// "keepalived check - " repeated, as keepalived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// `true`: a reply must arrive within `connect_timeout`; or the hex octets the reply must
    /// start with, `x` a wildcard nibble (`"de ad xx"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_reply: Option<RequireReply>,
    /// With `require_reply`: bounds of the reply's length (default 0 and 255).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_reply_length: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_reply_length: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_before_retry: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindto: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_loop: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<bool>,
}

/// keepalived's `require_reply [HEX]`: the bare keyword, or the octets expected.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum RequireReply {
    Flag(bool),
    Data(String),
}

/// `DNS_CHECK { type …; name … }`: a query over UDP; the answer must be a response with
/// rcode NOERROR (and, keeper's own, hold the `answer` records).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct DnsCheck {
    /// Record type, default `SOA` (keepalived).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub query_type: Option<String>,
    /// Default the root, `.` (keepalived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// keeper's own: records the answer section must hold, in the form `dig` prints their
    /// data (`"10.0.0.21"`, `"10 mail.example.org."`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answer: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Secs>,
    /// Default 3 (keepalived's DNS checker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
    /// Default the `delay_loop` (keepalived's DNS checker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_before_retry: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindto: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_loop: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<bool>,
}

/// `PING_CHECK { … }`: an ICMP or ICMPv6 echo, answered within `connect_timeout`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct PingCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_before_retry: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindto: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_loop: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<bool>,
}

/// `SMTP_CHECK { helo_name … }`: banner 220, `HELO` answered 250, `QUIT`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct SmtpCheck {
    /// Default `smtpchecker.keepalived.org` (keepalived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helo_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_before_retry: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindto: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_loop: Option<Secs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<bool>,
}

/// `FILE_CHECK { track_file NAME; weight N [reverse] }`: the integer in a tracked file.
/// Weight 0: non-zero is DOWN (zero with `reverse`); otherwise value x weight is added to the
/// real server's weight.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct FileCheck {
    /// A `vrrp_track_file` table (keepalived's `track_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_file: Option<String>,
    /// Default: the track file's `weight` (and `reverse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse: Option<bool>,
}

// --- end of health checks II --------------------------------------------------------------------

/// HTTP status codes accepted by a check: inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCodes(pub Vec<(u16, u16)>);

impl StatusCodes {
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&code))
    }

    fn parse_word(word: &str) -> Result<(u16, u16), String> {
        let code = |s: &str| -> Result<u16, String> {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| format!("invalid HTTP status code {s:?} (100-599)"))
        };
        match word.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (code(lo)?, code(hi)?);
                if lo > hi {
                    return Err(format!("invalid status code range {word:?}"));
                }
                Ok((lo, hi))
            }
            None => code(word).map(|c| (c, c)),
        }
    }
}

impl fmt::Display for StatusCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self
            .0
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect();
        f.write_str(&words.join(" "))
    }
}

impl<'de> Deserialize<'de> for StatusCodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusCodes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status code, a string such as \"200-299 401\", or an array of those")
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<StatusCodes, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<StatusCodes, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<StatusCodes, E> {
                let ranges = v
                    .split([' ', ','])
                    .filter(|w| !w.is_empty())
                    .map(StatusCodes::parse_word)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(E::custom)?;
                if ranges.is_empty() {
                    return Err(E::custom("empty status_code"));
                }
                Ok(StatusCodes(ranges))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusCodes, A::Error> {
                let mut all = Vec::new();
                while let Some(item) = seq.next_element::<StatusCodes>()? {
                    all.extend(item.0);
                }
                Ok(StatusCodes(all))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for StatusCodes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
