//! Many pipelines in one process, one per config file (the file's stem is the tenant's
//! name): each is started, restarted and stopped on its own, and all share one runtime,
//! so a thousand tenants of one transform compile it once.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, oneshot, watch};

use crate::config::{self, ConfigError, LimitPolicy};
use crate::metrics::{Registry, Summary};
use crate::pipeline::{self, Prepared, RunHandles};
use crate::runtime::Runtime;

/// How often `--pipelines DIR` is looked at for added, changed and removed files.
const RESCAN_EVERY: Duration = Duration::from_secs(1);

/// What the operator set for every tenant.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replaces every tenant's transform (`--transform`).
    pub transform: Option<PathBuf>,
    pub policy: LimitPolicy,
}

/// How a tenant's run ended.
pub type TenantEnd = (Summary, anyhow::Result<()>);

struct Tenant {
    /// The config file's bytes when the tenant started: a change restarts it.
    contents: Vec<u8>,
    stop: watch::Sender<bool>,
    /// How the run ended, once it has.
    end: Option<oneshot::Receiver<TenantEnd>>,
}

pub struct Supervisor {
    runtime: Runtime,
    options: RunOptions,
    registry: Arc<Registry>,
    /// Bumped to make every pipeline look at its transform file again.
    reloads: Arc<watch::Sender<u64>>,
    tenants: BTreeMap<String, Tenant>,
    /// Signalled after a tenant's end is ready to collect, so a finished batch run is
    /// reported (and the process exits) at once instead of at the next poll.
    ended: Arc<Notify>,
}

impl Supervisor {
    pub fn new(runtime: Runtime, options: RunOptions, registry: Arc<Registry>) -> Self {
        let (reloads, _) = watch::channel(0);
        Self { runtime, options, registry, reloads: Arc::new(reloads), tenants: BTreeMap::new(), ended: Arc::default() }
    }

    /// What to bump for a reload (SIGHUP, `skippr reload`).
    pub fn reloader(&self) -> Arc<watch::Sender<u64>> {
        Arc::clone(&self.reloads)
    }

    /// Loads and prepares one config file: everything that can fail before a run.
    pub fn prepare(&self, path: &Path) -> Result<Prepared, ConfigError> {
        let mut config = config::load(path, &self.options.policy)?;
        if let Some(transform) = &self.options.transform {
            config.transform.path = Some(transform.clone());
        }
        pipeline::prepare(config, &self.runtime, path)
    }

    /// Starts a prepared pipeline as the tenant `name`.
    pub fn launch(&mut self, prepared: Prepared, contents: Vec<u8>) {
        let name = prepared.name().to_owned();
        let (stop, mut stopped) = watch::channel(false);
        let handles = RunHandles { counters: self.registry.counters_for(&name), reloads: self.reloads.subscribe() };
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let run = async move {
            let (summary, outcome) = prepared.run(shutdown, handles).await;
            (summary, outcome.map_err(anyhow::Error::from))
        };
        tracing::info!(tenant = %name, "Pipeline started.");
        self.spawn(name, contents, stop, run);
    }

    /// Runs a tenant's task; its end is kept for [`Self::collect_finished`] and `stop`.
    fn spawn(
        &mut self,
        name: String,
        contents: Vec<u8>,
        stop: watch::Sender<bool>,
        run: impl Future<Output = TenantEnd> + Send + 'static,
    ) {
        let run = tokio::spawn(run);
        // A second task hands the end over, panics included, and only then signals it.
        let (done, end) = oneshot::channel();
        let ended = Arc::clone(&self.ended);
        tokio::spawn(async move {
            let _ = done.send(
                run.await
                    .unwrap_or_else(|err| (Summary::default(), Err(anyhow::anyhow!("the pipeline panicked: {err}")))),
            );
            ended.notify_one();
        });
        self.tenants.insert(name, Tenant { contents, stop, end: Some(end) });
    }

    /// Resolves once some tenant's run has ended since the last call (at once if one has).
    pub async fn tenant_ended(&self) {
        self.ended.notified().await;
    }

    /// Stops a tenant and waits for it to drain.
    pub async fn stop(&mut self, name: &str) -> Option<TenantEnd> {
        let mut tenant = self.tenants.remove(name)?;
        let _ = tenant.stop.send(true);
        let end = tenant.end.take()?;
        Some(
            end.await
                .unwrap_or_else(|_| (Summary::default(), Err(anyhow::anyhow!("the pipeline's task was cancelled")))),
        )
    }

    /// Stops every tenant; returns how each ended.
    pub async fn stop_all(&mut self) -> Vec<(String, TenantEnd)> {
        let names: Vec<String> = self.tenants.keys().cloned().collect();
        for name in &names {
            if let Some(tenant) = self.tenants.get(name) {
                let _ = tenant.stop.send(true);
            }
        }
        let mut ends = Vec::new();
        for name in names {
            if let Some(end) = self.stop(&name).await {
                ends.push((name, end));
            }
        }
        ends
    }

    /// Tenants whose run has ended by itself (batch drained, or failed), with how.
    pub fn collect_finished(&mut self) -> Vec<(String, TenantEnd)> {
        let mut ended = Vec::new();
        for (name, tenant) in &mut self.tenants {
            if let Some(end) = tenant.end.as_mut().and_then(|end| end.try_recv().ok()) {
                tenant.end = None;
                ended.push((name.clone(), end));
            }
        }
        ended
    }

    pub fn all_finished(&self) -> bool {
        self.tenants.values().all(|tenant| tenant.end.is_none())
    }

    /// Brings the running tenants in line with the files in `dir`: starts new ones,
    /// restarts changed ones, stops removed ones. A file that does not validate is
    /// reported and skipped; the others go on.
    pub async fn sync_dir(&mut self, dir: &Path) {
        let files = config_files(dir);
        let removed: Vec<String> = self.tenants.keys().filter(|name| !files.contains_key(*name)).cloned().collect();
        for name in removed {
            tracing::info!(tenant = %name, "Config file removed: stopping the pipeline.");
            if let Some(end) = self.stop(&name).await {
                report(&name, &end);
            }
            self.registry.forget(&name);
        }
        for (name, path) in files {
            let Ok(contents) = std::fs::read(&path) else { continue };
            match self.tenants.get(&name) {
                Some(tenant) if tenant.contents == contents => continue,
                Some(_) => {
                    tracing::info!(tenant = %name, "Config file changed: restarting the pipeline.");
                    if let Some(end) = self.stop(&name).await {
                        report(&name, &end);
                    }
                }
                None => {}
            }
            // Compiling may take a while: let the other tenants' tasks move to another worker.
            match tokio::task::block_in_place(|| self.prepare(&path)) {
                Ok(prepared) => self.launch(prepared, contents),
                Err(err) => {
                    tracing::error!(tenant = %name, error = %err, "Config refused; fix the file and it is retried.");
                    // Remember the refused contents so the error is not repeated every scan.
                    let (stop, _) = watch::channel(false);
                    self.tenants.insert(name, Tenant { contents, stop, end: None });
                }
            }
        }
    }
}

/// `*.yaml` and `*.yml` files in `dir`, by tenant name.
fn config_files(dir: &Path) -> BTreeMap<String, PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return BTreeMap::new() };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .filter_map(|path| Some((path.file_stem()?.to_string_lossy().into_owned(), path)))
        .collect()
}

/// Logs how a tenant ended.
pub fn report(name: &str, (summary, outcome): &TenantEnd) {
    match outcome {
        Ok(()) => tracing::info!(tenant = %name, summary = %summary, "Pipeline ended."),
        Err(err) => {
            tracing::error!(tenant = %name, summary = %summary, error = %format!("{err:#}"), "Pipeline failed.")
        }
    }
}

/// Watches `dir` until `shutdown`, then stops every tenant.
pub async fn run_dir(
    supervisor: &mut Supervisor,
    dir: &Path,
    mut shutdown: watch::Receiver<bool>,
) -> Vec<(String, TenantEnd)> {
    loop {
        supervisor.sync_dir(dir).await;
        for (name, end) in supervisor.collect_finished() {
            report(&name, &end);
        }
        tokio::select! {
            _ = tokio::time::sleep(RESCAN_EVERY) => {}
            () = supervisor.tenant_ended() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    supervisor.stop_all().await
}

/// Runs fixed tenants until all have ended or `shutdown`; returns how each ended.
pub async fn run_all(supervisor: &mut Supervisor, mut shutdown: watch::Receiver<bool>) -> Vec<(String, TenantEnd)> {
    let mut ends = Vec::new();
    while !supervisor.all_finished() {
        tokio::select! {
            () = supervisor.tenant_ended() => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        ends.extend(supervisor.collect_finished());
    }
    ends.extend(supervisor.stop_all().await);
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervisor() -> Supervisor {
        Supervisor::new(Runtime::new().expect("a runtime"), RunOptions::default(), Arc::default())
    }

    fn spawn_tenant(supervisor: &mut Supervisor, name: &str, run: impl Future<Output = TenantEnd> + Send + 'static) {
        let (stop, _) = watch::channel(false);
        supervisor.spawn(name.to_owned(), Vec::new(), stop, run);
    }

    /// On a paused clock nothing but a timer moves time: `run_all` returning with none
    /// elapsed means it noticed the end, not a poll (it used to poll every 100 ms, so a
    /// batch run exited up to 100 ms after it had drained).
    #[tokio::test(start_paused = true)]
    async fn run_all_returns_as_soon_as_the_last_tenant_ends() {
        let mut supervisor = supervisor();
        let (finish, finished) = oneshot::channel::<()>();
        spawn_tenant(&mut supervisor, "quick", async { (Summary::default(), Ok(())) });
        spawn_tenant(&mut supervisor, "later", async {
            let _ = finished.await;
            (Summary::default(), Ok(()))
        });
        let (_stop, shutdown) = watch::channel(false);
        let started = tokio::time::Instant::now();
        let running = tokio::spawn(async move { run_all(&mut supervisor, shutdown).await });
        tokio::task::yield_now().await;
        finish.send(()).expect("the tenant waits");
        let ends = running.await.expect("run_all does not panic");
        let mut names: Vec<&str> = ends.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["later", "quick"]);
        assert_eq!(started.elapsed(), Duration::ZERO, "no timer was waited for");
    }

    #[tokio::test]
    async fn an_end_is_ready_to_collect_when_it_is_signalled_and_a_panic_is_an_error() {
        let mut supervisor = supervisor();
        spawn_tenant(&mut supervisor, "panics", async { panic!("on purpose") });
        supervisor.tenant_ended().await;
        let ends = supervisor.collect_finished();
        let [(name, (_, Err(err)))] = ends.as_slice() else { panic!("one failed end: {ends:?}") };
        assert_eq!(name, "panics");
        assert!(err.to_string().starts_with("the pipeline panicked"), "{err}");
        assert!(supervisor.all_finished());
    }
}
