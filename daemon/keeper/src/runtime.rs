//! The daemon's event loop: signals, reloads, and the drivers (VRRP now; IPVS and checkers as
//! they land).

use std::path::PathBuf;

use tokio::signal::unix::{SignalKind, signal};

use keeper_vrrp::State;

use crate::check::{self, Checkers};
use crate::config::{self, Loaded};
use crate::control::{self, InstanceView, Pending, Request, Response, Status};
use crate::launcher::{self, ScriptRunner};
use crate::lvs::{Lvs, RealServerHealth, RealServerId};
use crate::metrics::{self, Metrics};
use crate::notify::{Notifier as Notifications, NotifyState};
use crate::privilege::{self, PrivilegeError};
use crate::shutdown::{self, STOP_DEADLINE, ShutdownHooks};
use crate::systemd::Notifier;
use crate::vrrp::driver::{Driver, DriverError, Setup};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start the event loop: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Vrrp(#[from] DriverError),
    #[error("notify scripts: {0}")]
    Notify(String),
    #[error("dropping privileges: {0}")]
    Privilege(#[from] PrivilegeError),
    #[error("{0}")]
    Start(String),
    #[error("stop forced ({0}): some virtual addresses or IPVS entries may remain")]
    ForcedStop(String),
}

/// What `keeperd` prepared while it still had a single thread (see `bin/keeperd.rs`).
pub struct Startup {
    /// Who runs what (daemon user, script users, launcher).
    pub plan: privilege::Plan,
    /// The service manager's notification socket, taken from the environment.
    pub notifier: Notifier,
}

/// How long stop notifications (`notify_stop`, STOP mail) may take at shutdown.
const NOTIFY_STOP_BOUND: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs until SIGTERM or SIGINT.
pub fn run(loaded: Loaded, config_path: PathBuf, startup: Startup) -> Result<(), RuntimeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(event_loop(loaded, config_path, startup))
}

/// The one-line summary for systemd's STATUS=.
fn summary(driver: &Driver) -> String {
    let status = driver.status();
    if status.is_empty() {
        return "running; no VRRP instances".to_string();
    }
    let mut parts = Vec::new();
    for s in [
        State::Master,
        State::Backup,
        State::Fault,
        State::Initialize,
    ] {
        let n = status.iter().filter(|i| i.state == s).count();
        if n > 0 {
            parts.push(format!("{n} {s}"));
        }
    }
    format!("VRRP instances: {}", parts.join(", "))
}

async fn tick(watchdog: &mut Option<tokio::time::Interval>) {
    match watchdog {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn control_access(
    cfg: &config::Config,
    plan: &privilege::Plan,
) -> Result<control::Access, RuntimeError> {
    let (gid, group_name) = match &cfg.global.control_socket_group {
        Some(g) => (
            privilege::resolve_group(g)
                .map_err(|e| RuntimeError::Start(format!("global.control_socket_group: {e}")))?,
            g.clone(),
        ),
        None => (plan.daemon.gid, format!("of user {}", plan.daemon.name)),
    };
    Ok(control::Access {
        daemon_uid: plan.daemon.uid,
        gid,
        group_name,
    })
}

async fn event_loop(
    loaded: Loaded,
    config_path: PathBuf,
    startup: Startup,
) -> Result<(), RuntimeError> {
    let Startup {
        plan: who,
        mut notifier,
    } = startup;
    let mut loaded = loaded;
    loaded.forget_places();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    // --- notify (notify/): scripts, notify_fifo, SMTP alerts on state changes.

    // --- Everything that needs privilege is opened here, before the drop below. ----------------
    let socket_path = loaded.config.global.control_socket.clone();
    let access = control_access(&loaded.config, &who)?;
    let mut requests = control::serve_with(&socket_path, access).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("control socket {}: {e}", socket_path.display()),
        )
    })?;
    let metrics = Metrics::new();
    let metrics_listener = match &loaded.config.global.metrics_listen {
        Some(addr) => Some(metrics::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("global.metrics_listen {addr}: {e}"))
        })?),
        None => None,
    };
    // The launcher starts with the privileges keeperd started with and drops to its own.
    let scripts = ScriptRunner::start(&who, &launcher::own_exe())
        .map_err(|e| RuntimeError::Start(format!("starting the script launcher: {e}")))?;

    let mut driver = Driver::start(Setup::from_config(&loaded.config)).await?;
    // lvs: IPVS in a task of its own beside this loop (started while privileged: it may set a
    // sysctl), told about reloads, VRRP states and health verdicts.
    let (lvs, lvs_first_pass) =
        Lvs::start(&loaded.config, loaded.lvs_plans(), vrrp_states(&driver));
    let dropped = privilege::drop_privileges(&who.daemon, privilege::DAEMON_CAPS)?;
    privilege::log_dropped("keeperd", &dropped, privilege::DAEMON_CAPS);
    // --- Unprivileged from here on (CAP_NET_ADMIN and CAP_NET_RAW only). --------------------

    // The checkers start after the first IPVS pass (the table first, as keepalived's checker).
    // Their plan is made then too, by the loop below: on this one thread, making it here (40 ms
    // for 10,000 real servers in a VM) delayed the table.
    let (checker_plan, planned) = tokio::sync::oneshot::channel();
    let mut checker_plan = Some(checker_plan);
    let mut checkers = Checkers::start(async move { planned.await.ok() }, scripts.clone());
    let first_pass = lvs_first_pass.done();
    tokio::pin!(first_pass);
    // Tracked objects (track/): vrrp_script runs (through the launcher), track files, processes.
    let (mut tracker, mut observations) = crate::track::Tracker::start_with(
        &loaded.config,
        crate::track::TrackerOptions {
            exec: std::sync::Arc::new(scripts.clone()),
            ..Default::default()
        },
    );
    // notify (notify/): scripts (through the launcher), notify_fifo, SMTP alerts. Started as
    // the daemon's user, so the FIFO it creates is its own to remove at stop.
    let notes = Notifications::start(
        &loaded.config,
        crate::notify::exec::Runner::Launcher(scripts.clone()),
    );

    let (refresh_tx, mut refresh) = tokio::sync::mpsc::channel::<metrics::Refresh>(4);
    if let Some(listener) = metrics_listener {
        if let Ok(a) = listener.local_addr() {
            tracing::info!("metrics on http://{a}/metrics");
        }
        metrics::serve(listener, metrics.clone(), refresh_tx);
    }
    // Subsystems that need work done at stop register here (IPVS sync daemon, IPVS flush).
    let mut hooks = ShutdownHooks::default();
    {
        // lvs: stop the sync daemon; the table stays unless `lvs_flush_on_stop`.
        let lvs = lvs.clone();
        hooks.add("ipvs", move || async move { lvs.shutdown().await });
    }
    // Other subsystems run their scripts through `scripts` (clone it).
    let mut changes = driver.subscribe();
    // --- notify: the transitions `Driver::start` made before anyone could subscribe, then
    // every later one through the broadcast (nothing runs between the two).
    for s in driver.status() {
        if let Some((at, transition)) = s.last_transition {
            notes.vrrp_change(&crate::vrrp::driver::StateChange {
                instance: s.name.clone(),
                vrid: s.vrid,
                priority: s.priority,
                transition,
                at,
            });
        }
    }
    let mut group_changes = driver.subscribe_groups();
    let mut running = loaded;
    tracing::info!(
        instances = running.config.vrrp_instance.len(),
        virtual_servers = running.config.virtual_server.len(),
        "keeperd started"
    );
    notifier.ready(&summary(&driver));
    let mut watchdog = notifier.watchdog_interval().map(|every| {
        let mut i = tokio::time::interval(every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    loop {
        let input = tokio::select! {
            input = driver.next_input() => input,
            // Polled only until it resolves (the guard): then the checkers get their plan, made
            // from the configuration running now (a reload meanwhile also sent them its own).
            _ = &mut first_pass, if checker_plan.is_some() => {
                if let Some(tx) = checker_plan.take() {
                    let _ = tx.send(check::plan::plan(&running.config));
                }
                continue;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                notifier.reloading();
                if reload(&config_path, &mut running, &scripts, (&mut driver, &checkers, &mut tracker, &lvs)).await.0 {
                    running.forget_places();
                    notes.reconfigure(&running.config);
                    lvs.vrrp_states(vrrp_states(&driver));
                }
                notifier.ready(&summary(&driver));
                continue;
            }
                        Some(seen) = observations.recv() => {
                // Raw observations; the driver owns the arithmetic (keeper_vrrp::tracking).
                match seen {
                    crate::track::Observation::Script { name, outcome, .. } => {
                        driver.script_result(&name, outcome.success()).await;
                    }
                    crate::track::Observation::File { name, value, .. } => driver.file_value(&name, value).await,
                    crate::track::Observation::Process { name, running, quorum } => {
                        driver.process_up(&name, quorum.is_met(running)).await;
                    }
                }
                continue;
            }
            Some(verdict) = checkers.next_verdict() => {
                // A real server's health changed (logged by the checkers): the IPVS reconcile
                // takes it from here.
                lvs.health(
                    RealServerId::new(verdict.key.virtual_server, verdict.key.real_server),
                    RealServerHealth { up: verdict.up, weight: verdict.weight },
                );
                continue;
            }
            Some(Pending { request, reply }) = requests.recv() => {
                let response = match request {
                    Request::Status => Response::Status(Status {
                        instances: driver.status().iter().map(InstanceView::from).collect(),
                        vrrp_unmatched: driver.unmatched,
                        vrrp_malformed: driver.malformed,
                        real_servers: checkers.status().iter().map(Into::into).collect(),
                        checker: Some(checkers.stats().into()),
                        virtual_servers: checkers.quorums().iter().map(Into::into).collect(),
                    }),
                    Request::Reload => {
                        notifier.reloading();
                        let (ok, message) = reload(&config_path, &mut running, &scripts, (&mut driver, &checkers, &mut tracker, &lvs)).await;
                        if ok {
                            running.forget_places();
                            notes.reconfigure(&running.config);
                            lvs.vrrp_states(vrrp_states(&driver));
                        }
                        notifier.ready(&summary(&driver));
                        Response::Reloaded { ok, message }
                    }
                    Request::Ipvs => {
                        // lvs: read on a connection of its own, off this loop.
                        tokio::spawn(async move {
                            let response = match crate::lvs::read_kernel().await {
                                Ok(view) => Response::Ipvs(Box::new(view)),
                                Err(message) => Response::Error { message },
                            };
                            let _ = reply.send(response);
                        });
                        continue;
                    }
                };
                let _ = reply.send(response);
                continue;
            }
            Some(done) = refresh.recv() => {
                metrics.set_vrrp(metrics::VrrpSnapshot {
                    instances: driver.status(),
                    unmatched: driver.unmatched,
                    malformed: driver.malformed,
                });
                let _ = done.send(());
                continue;
            }
            // From the loop itself: a loop stuck in processing stops petting, and systemd
            // restarts keeperd.
            _ = tick(&mut watchdog) => {
                notifier.watchdog();
                continue;
            }
            // Each state change goes to the notifications (never waiting for scripts or mail)
            // and to systemd's STATUS=.
            change = changes.recv() => {
                // lvs: the sync daemon follows the states (a snapshot: a lag loses nothing).
                lvs.vrrp_states(vrrp_states(&driver));
                match change {
                    Ok(c) => notes.vrrp_change(&c),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => notes.lagged(n),
                    // The driver owns the sender and outlives this loop.
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => changes = driver.subscribe(),
                }
                notifier.status(&summary(&driver));
                continue;
            }
            change = group_changes.recv() => {
                match change {
                    Ok(g) => {
                        let state = match g.to {
                            State::Master => Some(NotifyState::Master),
                            State::Backup => Some(NotifyState::Backup),
                            State::Fault => Some(NotifyState::Fault),
                            State::Initialize => None,
                        };
                        if let Some(state) = state {
                            notes.group(&g.group, state);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => notes.lagged(n),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => group_changes = driver.subscribe_groups(),
                }
                continue;
            }
        };
        driver.process(input).await;
    }
    // Stopping before the first IPVS pass: the checkers start with no real servers, to stop.
    drop(checker_plan);
    stop(
        Stopping {
            driver,
            checkers,
            tracker,
            hooks,
            notes: &notes,
        },
        &mut notifier,
        &mut term,
        &mut int,
        &socket_path,
    )
    .await
}

/// What the graceful stop stops, in this order: VRRP (with the checkers' omega scripts), the
/// STOP notifications, then the registered hooks.
struct Stopping<'a> {
    driver: Driver,
    checkers: Checkers,
    tracker: crate::track::Tracker,
    hooks: ShutdownHooks,
    notes: &'a Notifications,
}

/// The graceful stop (see [`crate::shutdown`]): VRRP first, then the hooks, all within
/// [`STOP_DEADLINE`]; a second SIGTERM/SIGINT forces the exit.
async fn stop(
    what: Stopping<'_>,
    notifier: &mut Notifier,
    term: &mut tokio::signal::unix::Signal,
    int: &mut tokio::signal::unix::Signal,
    socket_path: &std::path::Path,
) -> Result<(), RuntimeError> {
    tracing::info!("keeperd stopping: priority 0 adverts, releasing virtual addresses");
    notifier.stopping("stopping: releasing virtual addresses");
    let deadline = tokio::time::Instant::now() + STOP_DEADLINE;
    let Stopping {
        mut driver,
        checkers,
        tracker,
        hooks,
        notes,
    } = what;
    let stopping: Vec<(String, u8)> = driver
        .status()
        .into_iter()
        .map(|s| (s.name, s.priority))
        .collect();
    let graceful = async {
        // omega: notify_down scripts run while VRRP releases its addresses.
        tokio::join!(driver.shutdown(), checkers.shutdown());
        // Tracked scripts stop after VRRP: no late result can move a released instance.
        tracker.stop().await;
        // notify: STOP notifications after the VIPs are released (failover first), bounded.
        notes.stop(&stopping, NOTIFY_STOP_BOUND).await;
        hooks.run(deadline).await
    };
    let second_signal = async {
        tokio::select! {
            _ = term.recv() => "second SIGTERM",
            _ = int.recv() => "second SIGINT",
        }
    };
    let outcome = shutdown::bounded(graceful, deadline, second_signal).await;
    let _ = std::fs::remove_file(socket_path);
    match outcome {
        Ok(()) => {
            tracing::info!("keeperd stopped");
            Ok(())
        }
        Err(why) => Err(RuntimeError::ForcedStop(why)),
    }
}

/// Parses and validates first; an invalid configuration keeps the running one. A valid one is
/// applied as differences only (see `Driver::reload`).
async fn reload(
    config_path: &std::path::Path,
    running: &mut Loaded,
    scripts: &ScriptRunner,
    (driver, checkers, tracker, lvs): (&mut Driver, &Checkers, &mut crate::track::Tracker, &Lvs),
) -> (bool, String) {
    // Usually re-reads only the virtual server whose text changed (see config::reload).
    match config::reload_from(running, config_path, std::env::vars()).and_then(|new| {
        // Script users are fixed at start: the launcher drops the power to add one.
        let mut errors: Vec<(config::KeyPath, String)> =
            privilege::configured_script_users(&new.config)
                .into_iter()
                .filter_map(|(key, spec)| {
                    scripts
                        .can_run_as(Some(&spec))
                        .err()
                        .map(|e| (key, e.to_string()))
                })
                .collect();
        if new.config.global.script_user != running.config.global.script_user {
            errors.push((
                vec!["global".to_string(), "script_user".to_string()],
                "changing it needs a restart".to_string(),
            ));
        }
        if errors.is_empty() {
            Ok(new)
        } else {
            Err(errors
                .into_iter()
                .map(|(path, message)| config::Diagnostic {
                    severity: config::Severity::Error,
                    origin: new.origin_of(&path),
                    path,
                    message,
                })
                .collect())
        }
    }) {
        Ok(new) => {
            for w in &new.warnings {
                tracing::warn!("{w}");
            }
            // Only the differences are applied: unchanged instances and real servers are not
            // touched (they keep state, timers and VIPs). IPVS is told first, and its task runs
            // first: a reload that changes a weight reaches the kernel without waiting for the
            // rest (VRRP setup, 10,000 real servers' checkers).
            lvs.reload(&new.config, new.lvs_plans());
            // Let it run now: the VRRP driver's, checkers' and tracker's reloads below do not
            // yield, and a new weight should not wait for them.
            tokio::task::yield_now().await;
            driver.reload(Setup::from_config(&new.config)).await;
            checkers.reload(check::plan::plan(&new.config));
            tracker.reload(&new.config);
            *running = new;
            let message = "configuration reloaded".to_string();
            tracing::info!("{message}");
            (true, message)
        }
        Err(errors) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            let message = format!(
                "reload refused ({} errors); the running configuration stays",
                errors.len()
            );
            tracing::error!("{message}");
            (false, message)
        }
    }
}

/// Each VRRP instance's state, for the IPVS sync daemon.
fn vrrp_states(driver: &Driver) -> std::collections::BTreeMap<String, State> {
    driver
        .status()
        .into_iter()
        .map(|s| (s.name, s.state))
        .collect()
}
