//! The one [`Engine`] that talks to a socket: [`BollardEngine`], bollard over the local Docker
//! socket (`DOCKER_HOST` honoured). It owns the mapping of bollard's errors onto [`EngineError`]
//! and the quirks of Docker 20.10 / API 1.41: health and exit code parsed from the status text,
//! one network endpoint per create, no `CheckDuplicate` for networks, files copied in by tar.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum, EndpointIpamConfig, EndpointSettings,
    EventMessage, ExecConfig, HealthConfig, HostConfig, Ipam, IpamConfig, Mount, MountType, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::{
    BoxFuture, ContainerFile, ContainerSpec, ContainerState, DockerHealth, Engine, EngineError, EngineEvent,
    EngineResult, EventStream, ExecHealthcheck, ExecOutput, NetworkSpec, ObservedContainer, RegistryAuth, Rejoined,
    VolumeSpec, owned,
};

/// Client timeout for every request. It bounds the wait for response headers, and a stop waits
/// up to the grace period inside one request, so it must exceed the largest grace period.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The container events worth streaming. Without this filter a HEALTHCHECK emits
/// `exec_create`/`exec_start`/`exec_die` on every interval.
const EVENT_ACTIONS: [&str; 5] = ["start", "die", "stop", "destroy", "health_status"];

/// How much of an exec's output is kept (its tail), for events and logs.
const EXEC_OUTPUT_LIMIT: usize = 4096;

/// Replaces environment values that an engine message might echo back.
const REDACTED: &str = "<redacted>";

/// The Docker engine through bollard.
#[derive(Debug, Clone)]
pub struct BollardEngine {
    docker: Docker,
}

impl BollardEngine {
    /// Connects with the local defaults (`DOCKER_HOST`, else the local socket), negotiates the API
    /// version down to the engine's (never pinned) and raises the client timeout to
    /// [`CLIENT_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// [`EngineError::Unavailable`] when the socket is missing or the engine does not answer.
    pub async fn connect() -> Result<Self, EngineError> {
        let docker = Docker::connect_with_local_defaults().map_err(|e| map_error(e, "docker engine"))?;
        let docker = docker.negotiate_version().await.map_err(|e| map_error(e, "docker engine version"))?;
        let docker = docker.with_timeout(CLIENT_TIMEOUT);
        tracing::debug!(api_version = %docker.client_version(), "connected to docker engine");
        Ok(Self { docker })
    }

    /// Wraps an already configured client (tests, custom transports).
    #[must_use]
    pub fn from_docker(docker: Docker) -> Self {
        Self { docker }
    }

    /// The underlying client.
    #[must_use]
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Whether a network of exactly this name exists (inspect also matches id prefixes).
    async fn network_exists(&self, name: &str) -> EngineResult<bool> {
        Ok(self.network_labels(name).await?.is_some())
    }

    /// The labels of the network of exactly this name (or id), `None` when there is none.
    async fn network_labels(&self, name: &str) -> EngineResult<Option<HashMap<String, String>>> {
        match self.docker.inspect_network(name, None).await {
            Ok(found) if found.name.as_deref() == Some(name) || found.id.as_deref() == Some(name) => {
                Ok(Some(found.labels.unwrap_or_default()))
            }
            Ok(_) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(map_error(e, &format!("network {name}"))),
        }
    }

    /// Ids of the networks of exactly this name, oldest first.
    async fn networks_named(&self, name: &str) -> EngineResult<Vec<String>> {
        let filters = HashMap::from([("name", vec![name.to_owned()])]);
        let options = bollard::query_parameters::ListNetworksOptionsBuilder::new().filters(&filters).build();
        let mut found: Vec<(String, String)> = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|e| map_error(e, &format!("network {name}")))?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| Some((n.created.clone().unwrap_or_default(), n.id?)))
            .collect();
        found.sort();
        Ok(found.into_iter().map(|(_, id)| id).collect())
    }

    /// Everything after the create call: other networks, then files. The caller removes the
    /// container when this fails.
    async fn finish_create(&self, id: &str, spec: &ContainerSpec, archive: Option<Vec<u8>>) -> EngineResult<()> {
        for network in spec.networks.iter().skip(1) {
            let request = NetworkConnectRequest { container: id.to_owned(), endpoint_config: Some(endpoint(spec)) };
            self.docker
                .connect_network(network, request)
                .await
                .map_err(|e| map_error(e, &format!("network {network}")))?;
        }
        if let Some(archive) = archive {
            self.upload(id, archive).await?;
        }
        Ok(())
    }

    /// Unpacks a tar at `/` of the container.
    async fn upload(&self, id: &str, archive: Vec<u8>) -> EngineResult<()> {
        let options = UploadToContainerOptionsBuilder::new().path("/").build();
        self.docker.upload_to_container(id, Some(options), bollard::body_full(archive.into())).await.map_err(
            |e| match e {
                // The engine answered the call before: a 500 here is about the content ("not a
                // directory", read-only path), not a transient failure.
                BollardError::DockerResponseServerError { status_code, message } if status_code >= 500 => {
                    EngineError::Other { message: format!("copying files into container {id}: {message}") }
                }
                e => map_error(e, &format!("container {id}")),
            },
        )
    }

    /// The subnet and gateway Docker would give a new network of this name: it is created with
    /// the engine's defaults, read back and removed. See [`Self::create_pinned_network`].
    async fn default_subnet(&self, network: &NetworkSpec) -> EngineResult<IpamConfig> {
        let what = format!("network {}", network.name);
        let probe = NetworkCreateRequest {
            name: network.name.clone(),
            driver: Some("bridge".to_owned()),
            internal: Some(network.internal),
            labels: Some(to_hash_map(&network.labels)),
            ..NetworkCreateRequest::default()
        };
        let created = self.docker.create_network(probe).await.map_err(|e| map_error(e, &what))?;
        let inspected = self.docker.inspect_network(&created.id, None).await;
        self.docker.remove_network(&created.id).await.map_err(|e| map_error(e, &what))?;
        let config = inspected
            .map_err(|e| map_error(e, &what))?
            .ipam
            .and_then(|ipam| ipam.config)
            .and_then(|configs| configs.into_iter().find(|c| c.subnet.as_deref().is_some_and(|s| s.contains('.'))));
        config.ok_or_else(|| EngineError::Other { message: format!("{what}: the engine gave it no IPv4 subnet") })
    }

    /// Creates a network whose subnet is written in its IPAM config, so that endpoints may ask
    /// for a given address (`EndpointIpamConfig.IPv4Address`), which Docker refuses on networks
    /// with an automatic subnet ("user specified IP address is supported only when connecting to
    /// networks with user configured subnets", measured on 20.10). The subnet is the one Docker
    /// itself picks from its address pools (a probe network is created, read and removed), so
    /// it never collides with what the host or other networks use; a pool taken in between is
    /// retried.
    async fn create_pinned_network(&self, network: &NetworkSpec) -> EngineResult<String> {
        let what = format!("network {}", network.name);
        let mut last = None;
        for _ in 0..3 {
            let subnet = self.default_subnet(network).await?;
            let request = NetworkCreateRequest {
                name: network.name.clone(),
                driver: Some("bridge".to_owned()),
                internal: Some(network.internal),
                labels: Some(to_hash_map(&network.labels)),
                ipam: Some(Ipam {
                    driver: Some("default".to_owned()),
                    config: Some(vec![IpamConfig {
                        subnet: subnet.subnet,
                        gateway: subnet.gateway,
                        ..IpamConfig::default()
                    }]),
                    ..Ipam::default()
                }),
                ..NetworkCreateRequest::default()
            };
            match self.docker.create_network(request).await {
                Ok(created) => return Ok(created.id),
                // "Pool overlaps with other one on this address space": taken meanwhile.
                Err(BollardError::DockerResponseServerError { status_code: 403, message })
                    if message.contains("overlap") =>
                {
                    last = Some(message);
                }
                Err(e) => return Err(map_error(e, &what)),
            }
        }
        Err(EngineError::Other { message: format!("{what}: no free subnet: {}", last.unwrap_or_default()) })
    }
}

impl Engine for BollardEngine {
    fn ping(&self) -> BoxFuture<'_, EngineResult<()>> {
        Box::pin(async move {
            self.docker.ping().await.map_err(|e| map_error(e, "docker engine"))?;
            Ok(())
        })
    }

    fn list_containers<'a>(
        &'a self,
        labels: &'a [(String, String)],
    ) -> BoxFuture<'a, EngineResult<Vec<ObservedContainer>>> {
        Box::pin(async move {
            let mut filters: HashMap<&str, Vec<String>> = HashMap::new();
            if !labels.is_empty() {
                filters.insert("label", label_filter(labels));
            }
            let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
            let summaries = self.docker.list_containers(Some(options)).await.map_err(|e| map_error(e, "containers"))?;
            Ok(summaries.into_iter().filter_map(observe).collect())
        })
    }

    fn image_id<'a>(&'a self, image: &'a str) -> BoxFuture<'a, EngineResult<Option<String>>> {
        Box::pin(async move {
            match self.docker.inspect_image(image).await {
                Ok(inspect) => Ok(inspect.id),
                Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
                Err(e) => Err(map_error(e, &format!("image {image}"))),
            }
        })
    }

    fn pull_image<'a>(&'a self, image: &'a str, auth: Option<RegistryAuth>) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            let mut options = CreateImageOptionsBuilder::new().from_image(image);
            if let Some(tag) = default_tag(image) {
                options = options.tag(tag);
            }
            let credentials = auth.map(|auth| DockerCredentials {
                username: Some(auth.username),
                password: Some(auth.password),
                serveraddress: Some(auth.server),
                ..DockerCredentials::default()
            });
            tracing::debug!(image, "pulling image");
            let mut stream = self.docker.create_image(Some(options.build()), None, credentials);
            while let Some(item) = stream.next().await {
                item.map_err(|e| pull_error(image, e))?;
            }
            tracing::debug!(image, "pulled image");
            Ok(())
        })
    }

    fn ensure_network<'a>(&'a self, network: &'a NetworkSpec) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            let what = format!("network {}", network.name);
            // An existing one is used only if it is the stack's own (see `owned`).
            if let Some(labels) = self.network_labels(&network.name).await? {
                return owned::check_network(&network.name, &labels, &network.labels);
            }
            match self.create_pinned_network(network).await {
                Ok(id) => {
                    // API < 1.44 creates duplicate names (bollard 0.21 cannot send
                    // CheckDuplicate): if another one appeared meanwhile, keep the oldest, if
                    // it is ours.
                    let same_name = self.networks_named(&network.name).await?;
                    if let Some(first) = same_name.first().filter(|first| same_name.len() > 1 && *first != &id) {
                        tracing::debug!(network = %network.name, %id, "network appeared concurrently, removing the duplicate");
                        self.docker.remove_network(&id).await.map_err(|e| map_error(e, &what))?;
                        let labels = self.network_labels(first).await?.unwrap_or_default();
                        return owned::check_network(&network.name, &labels, &network.labels);
                    }
                    tracing::debug!(network = %network.name, %id, "created network");
                    Ok(())
                }
                Err(EngineError::Conflict { .. }) => {
                    let labels = self.network_labels(&network.name).await?.unwrap_or_default();
                    owned::check_network(&network.name, &labels, &network.labels)
                }
                Err(e) => Err(e),
            }
        })
    }

    fn ensure_volume<'a>(&'a self, volume: &'a VolumeSpec) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            let what = format!("volume {}", volume.name);
            match self.docker.inspect_volume(&volume.name).await {
                // An existing one is used only if it is the stack's own or adopted.
                Ok(found) => return owned::check_volume(&volume.name, &found.labels, &volume.labels, volume.adopt),
                Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {}
                Err(e) => return Err(map_error(e, &what)),
            }
            let request = VolumeCreateRequest {
                name: Some(volume.name.clone()),
                labels: Some(to_hash_map(&volume.labels)),
                ..VolumeCreateRequest::default()
            };
            // Docker answers an existing name with that volume, unchanged (no 409): the result
            // is checked like an existing one, in case it appeared meanwhile.
            match self.docker.create_volume(request).await {
                Ok(created) => {
                    tracing::debug!(volume = %volume.name, "created volume");
                    owned::check_volume(&volume.name, &created.labels, &volume.labels, volume.adopt)
                }
                Err(e) => Err(map_error(e, &what)),
            }
        })
    }

    fn create_container<'a>(&'a self, spec: &'a ContainerSpec) -> BoxFuture<'a, EngineResult<String>> {
        Box::pin(async move {
            // The engine answers this only after the create, with a 500 that reads as transient.
            if spec.read_only_root_filesystem && !spec.files.is_empty() {
                return Err(EngineError::Other {
                    message: format!(
                        "container {}: files cannot be copied into a read-only root filesystem",
                        spec.name
                    ),
                });
            }
            // Built first so that a bad path fails before anything exists.
            let archive = if spec.files.is_empty() {
                None
            } else {
                Some(files_tar(&spec.files).map_err(|e| EngineError::Other {
                    message: format!("container {}: building the files archive: {e}", spec.name),
                })?)
            };
            // The engine accepts unknown networks at create and connect time and only fails the
            // start, with a 404 that reads like a missing container: check them first.
            for network in &spec.networks {
                if !self.network_exists(network).await? {
                    return Err(EngineError::NotFound { what: format!("network {network}") });
                }
            }
            // Likewise volumes: the engine would make a missing one on the fly, without the
            // stack's labels, and the next look would refuse it as someone else's.
            for volume in &spec.volumes {
                match self.docker.inspect_volume(&volume.volume).await {
                    Ok(_) => {}
                    Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {
                        return Err(EngineError::NotFound { what: format!("volume {}", volume.volume) });
                    }
                    Err(e) => return Err(map_error(e, &format!("volume {}", volume.volume))),
                }
            }
            let options = CreateContainerOptionsBuilder::new().name(&spec.name).build();
            let created = match self.docker.create_container(Some(options), create_body(spec)).await {
                Ok(created) => created,
                // Volumes are created on the fly and networks were checked: it is the image.
                Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {
                    return Err(EngineError::NotFound { what: format!("image {}", spec.image) });
                }
                Err(e) => return Err(redact_error(map_error(e, &format!("container {}", spec.name)), &spec.env)),
            };
            let id = created.id;
            if let Err(err) = self.finish_create(&id, spec, archive).await {
                let options = RemoveContainerOptionsBuilder::new().force(true).v(false).build();
                if let Err(cleanup) = self.docker.remove_container(&id, Some(options)).await {
                    tracing::debug!(container = %spec.name, %id, error = %cleanup, "removing half-made container failed");
                }
                return Err(redact_error(err, &spec.env));
            }
            tracing::debug!(container = %spec.name, %id, "created container");
            Ok(id)
        })
    }

    fn start_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            // bollard treats 304 (already started) as success.
            match self.docker.start_container(id, None).await {
                Ok(()) => Ok(()),
                // A 404 also means "network X not found" (removed since the create): that is
                // not a missing container.
                Err(BollardError::DockerResponseServerError { status_code: 404, message })
                    if !message.contains("No such container") =>
                {
                    Err(EngineError::Other { message: format!("container {id}: {message} (HTTP 404)") })
                }
                Err(BollardError::DockerResponseServerError { status_code: 500, message })
                    if port_conflict(&message).is_some() =>
                {
                    Err(port_conflict(&message).unwrap_or(EngineError::Other { message }))
                }
                Err(e) => Err(map_error(e, &format!("container {id}"))),
            }
        })
    }

    fn stop_container<'a>(&'a self, id: &'a str, grace: Duration) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            let options = StopContainerOptionsBuilder::new().t(whole_seconds_i32(grace)).build();
            // bollard treats 304 (already stopped) as success; gone is stopped too.
            match self.docker.stop_container(id, Some(options)).await {
                Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
                Err(e) => Err(map_error(e, &format!("container {id}"))),
            }
        })
    }

    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            let options = RemoveContainerOptionsBuilder::new().force(true).v(false).build();
            match self.docker.remove_container(id, Some(options)).await {
                Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
                Err(e) => Err(map_error(e, &format!("container {id}"))),
            }
        })
    }

    fn logs_tail<'a>(&'a self, id: &'a str, lines: usize) -> BoxFuture<'a, EngineResult<String>> {
        Box::pin(async move {
            let options = LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .follow(false)
                .timestamps(false)
                .tail(&lines.to_string())
                .build();
            let mut stream = self.docker.logs(id, Some(options));
            let mut bytes = Vec::new();
            while let Some(item) = stream.next().await {
                let output = item.map_err(|e| map_error(e, &format!("container {id}")))?;
                bytes.extend_from_slice(&output.into_bytes());
            }
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        })
    }

    fn endpoint_aliases<'a>(&'a self, id: &'a str) -> BoxFuture<'a, EngineResult<BTreeMap<String, Vec<String>>>> {
        Box::pin(async move {
            let inspected =
                self.docker.inspect_container(id, None).await.map_err(|e| map_error(e, &format!("container {id}")))?;
            Ok(inspected
                .network_settings
                .and_then(|settings| settings.networks)
                .unwrap_or_default()
                .into_iter()
                .map(|(network, endpoint)| (network, endpoint.aliases.unwrap_or_default()))
                .collect())
        })
    }

    fn rejoin_network<'a>(
        &'a self,
        id: &'a str,
        network: &'a str,
        ipv4: Option<&'a str>,
        aliases: &'a [String],
    ) -> BoxFuture<'a, EngineResult<Rejoined>> {
        Box::pin(async move {
            let what = format!("network {network}");
            let request = NetworkDisconnectRequest { container: id.to_owned(), force: Some(false) };
            match self.docker.disconnect_network(network, request).await {
                // Not connected (a crash between the two calls, or a disconnect by hand): connect
                // it. Docker 20.10 says so with a 500 "container ... is not connected to network".
                Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 403 | 404, .. }) => {}
                Err(BollardError::DockerResponseServerError { message, .. })
                    if message.contains("is not connected") => {}
                Err(e) => return Err(map_error(e, &what)),
            }
            let connect = |pinned: Option<&str>| NetworkConnectRequest {
                container: id.to_owned(),
                endpoint_config: Some(EndpointSettings {
                    aliases: (!aliases.is_empty()).then(|| aliases.to_vec()),
                    ipam_config: pinned.map(|ip| EndpointIpamConfig {
                        ipv4_address: Some(ip.to_owned()),
                        ..EndpointIpamConfig::default()
                    }),
                    ..EndpointSettings::default()
                }),
            };
            let Some(ip) = ipv4 else {
                self.docker.connect_network(network, connect(None)).await.map_err(|e| map_error(e, &what))?;
                return Ok(Rejoined::NewAddress);
            };
            match self.docker.connect_network(network, connect(Some(ip))).await {
                Ok(()) => Ok(Rejoined::SameAddress),
                // A network with an automatic subnet (created by an older version, or by hand)
                // refuses a pinned address; the address was taken meanwhile. Never leave the
                // container off its network: connect it with whatever address comes.
                Err(BollardError::DockerResponseServerError { status_code, message })
                    if status_code < 500 && status_code != 404 =>
                {
                    tracing::debug!(container = %id, %network, %message, "cannot keep the address; reconnecting with a new one");
                    self.docker.connect_network(network, connect(None)).await.map_err(|e| map_error(e, &what))?;
                    Ok(Rejoined::NewAddress)
                }
                Err(e) => Err(map_error(e, &what)),
            }
        })
    }

    fn exec<'a>(&'a self, id: &'a str, command: &'a [String]) -> BoxFuture<'a, EngineResult<ExecOutput>> {
        Box::pin(async move {
            let what = format!("container {id}");
            let config = ExecConfig {
                cmd: Some(command.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..ExecConfig::default()
            };
            let created = self.docker.create_exec(id, config).await.map_err(|e| map_error(e, &what))?;
            let started = self
                .docker
                .start_exec(&created.id, Some(StartExecOptions::default()))
                .await
                .map_err(|e| map_error(e, &what))?;
            let mut bytes = Vec::new();
            if let StartExecResults::Attached { mut output, .. } = started {
                while let Some(item) = output.next().await {
                    let chunk = item.map_err(|e| map_error(e, &what))?;
                    bytes.extend_from_slice(&chunk.into_bytes());
                    // Only the tail is kept: a chatty reload must not fill memory.
                    if bytes.len() > EXEC_OUTPUT_LIMIT * 2 {
                        bytes.drain(..bytes.len() - EXEC_OUTPUT_LIMIT);
                    }
                }
            }
            let inspected = self.docker.inspect_exec(&created.id).await.map_err(|e| map_error(e, &what))?;
            let start = bytes.len().saturating_sub(EXEC_OUTPUT_LIMIT);
            Ok(ExecOutput {
                exit_code: inspected.exit_code,
                output: String::from_utf8_lossy(&bytes[start..]).into_owned(),
            })
        })
    }

    fn signal<'a>(&'a self, id: &'a str, signal: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            let options = KillContainerOptionsBuilder::new().signal(signal).build();
            self.docker.kill_container(id, Some(options)).await.map_err(|e| map_error(e, &format!("container {id}")))
        })
    }

    fn copy_files<'a>(&'a self, id: &'a str, files: &'a [ContainerFile]) -> BoxFuture<'a, EngineResult<()>> {
        Box::pin(async move {
            let archive = files_tar(files).map_err(|e| EngineError::Other {
                message: format!("container {id}: building the files archive: {e}"),
            })?;
            self.upload(id, archive).await
        })
    }

    fn events(&self, labels: &[(String, String)]) -> EventStream {
        let mut filters: HashMap<&str, Vec<String>> = HashMap::new();
        filters.insert("type", vec!["container".to_owned()]);
        filters.insert("event", EVENT_ACTIONS.iter().map(|&action| action.to_owned()).collect());
        if !labels.is_empty() {
            filters.insert("label", label_filter(labels));
        }
        // `since` = now: the engine replays what happened between this call and the first poll
        // (the request is only sent then), so a caller can subscribe, list, then consume.
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let since = format!("{}.{:09}", now.as_secs(), now.subsec_nanos());
        let options = EventsOptionsBuilder::new().since(&since).filters(&filters).build();
        let stream = self.docker.events(Some(options)).filter_map(|item| {
            let event = match item {
                Ok(message) => to_event(message).map(Ok),
                Err(e) => Some(Err(map_error(e, "event stream"))),
            };
            std::future::ready(event)
        });
        Box::pin(stream)
    }
}

/// Classifies a bollard error. `what` names the object for messages (never env values).
fn map_error(err: BollardError, what: &str) -> EngineError {
    match err {
        BollardError::DockerResponseServerError { status_code: 404, .. } => {
            EngineError::NotFound { what: what.to_owned() }
        }
        BollardError::DockerResponseServerError { status_code: 409, message } => {
            EngineError::Conflict { message: format!("{what}: {message}") }
        }
        BollardError::DockerResponseServerError { status_code, message } if status_code >= 500 => {
            EngineError::Unavailable { message: format!("{what}: {message} (HTTP {status_code})") }
        }
        BollardError::DockerResponseServerError { status_code, message } => {
            EngineError::Other { message: format!("{what}: {message} (HTTP {status_code})") }
        }
        e @ (BollardError::HyperResponseError { .. }
        | BollardError::HyperLegacyError { .. }
        | BollardError::IOError { .. }
        | BollardError::RequestTimeoutError
        | BollardError::SocketNotFoundError(_)) => EngineError::Unavailable { message: format!("{what}: {e}") },
        e => EngineError::Other { message: format!("{what}: {e}") },
    }
}

/// A pull's errors: whatever the engine or registry answered is a [`EngineError::Pull`]; a
/// transport failure stays what [`map_error`] makes of it (the engine, not the registry, is down).
fn pull_error(image: &str, err: BollardError) -> EngineError {
    match err {
        BollardError::DockerResponseServerError { message, .. } => {
            EngineError::Pull { image: image.to_owned(), message }
        }
        BollardError::DockerStreamError { error } => EngineError::Pull { image: image.to_owned(), message: error },
        e => map_error(e, &format!("image {image}")),
    }
}

/// Replaces every env value (and whole `NAME=value` pair) found in the error's message.
fn redact_error(err: EngineError, env: &[String]) -> EngineError {
    match err {
        EngineError::NotFound { what } => EngineError::NotFound { what: redact(what, env) },
        EngineError::Conflict { message } => EngineError::Conflict { message: redact(message, env) },
        EngineError::Pull { image, message } => EngineError::Pull { image, message: redact(message, env) },
        EngineError::Unavailable { message } => EngineError::Unavailable { message: redact(message, env) },
        EngineError::Other { message } => EngineError::Other { message: redact(message, env) },
        EngineError::PortConflict { port, message } => {
            EngineError::PortConflict { port, message: redact(message, env) }
        }
        EngineError::Foreign { name, message } => EngineError::Foreign { name, message: redact(message, env) },
    }
}

fn redact(mut message: String, env: &[String]) -> String {
    for pair in env {
        if message.contains(pair.as_str()) {
            message = message.replace(pair.as_str(), REDACTED);
        }
        // Values shorter than this would blank out ordinary words; a whole pair is caught above.
        if let Some((_, value)) = pair.split_once('=')
            && value.len() >= 4
            && message.contains(value)
        {
            message = message.replace(value, REDACTED);
        }
    }
    message
}

/// `label` filter values: `key=value` each.
fn label_filter(labels: &[(String, String)]) -> Vec<String> {
    labels.iter().map(|(key, value)| format!("{key}={value}")).collect()
}

fn to_hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The tag to send with a pull: `latest` when the reference has neither tag nor digest
/// (a port in the registry host, `host:5000/a`, is not a tag).
fn default_tag(image: &str) -> Option<&'static str> {
    if image.contains('@') {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') { None } else { Some("latest") }
}

/// One list entry as the controller sees it; `None` without an id.
fn observe(summary: ContainerSummary) -> Option<ObservedContainer> {
    let id = summary.id?;
    let status = summary.status.unwrap_or_default();
    let state = container_state(summary.state);
    let name = summary
        .names
        .and_then(|names| names.into_iter().next())
        .map(|name| name.trim_start_matches('/').to_owned())
        .unwrap_or_default();
    let created = SystemTime::UNIX_EPOCH + Duration::from_secs(summary.created.unwrap_or(0).max(0).unsigned_abs());
    let labels: BTreeMap<String, String> = summary.labels.unwrap_or_default().into_iter().collect();
    let publishes_ports = labels.contains_key(super::labels::HOST_PORTS)
        || summary.ports.iter().flatten().any(|p| p.public_port.is_some());
    let endpoints = summary.network_settings.and_then(|settings| settings.networks).unwrap_or_default();
    let mut networks: Vec<String> = endpoints.keys().cloned().collect();
    networks.sort();
    let addresses = endpoints
        .into_iter()
        .filter_map(|(network, endpoint)| endpoint.ip_address.filter(|ip| !ip.is_empty()).map(|ip| (network, ip)))
        .collect();
    Some(ObservedContainer {
        id,
        name,
        labels,
        state,
        health: health_from_status(&status),
        exit_code: exit_code_from_status(&status),
        status,
        created,
        image_id: summary.image_id.unwrap_or_default(),
        image: summary.image.unwrap_or_default(),
        addresses,
        networks,
        publishes_ports,
    })
}

fn container_state(state: Option<ContainerSummaryStateEnum>) -> ContainerState {
    match state {
        Some(ContainerSummaryStateEnum::CREATED) => ContainerState::Created,
        // `stopping` (newer engines only): the process still runs.
        Some(ContainerSummaryStateEnum::RUNNING | ContainerSummaryStateEnum::STOPPING) => ContainerState::Running,
        Some(ContainerSummaryStateEnum::PAUSED) => ContainerState::Paused,
        Some(ContainerSummaryStateEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerSummaryStateEnum::REMOVING) => ContainerState::Removing,
        Some(ContainerSummaryStateEnum::EXITED) => ContainerState::Exited,
        Some(ContainerSummaryStateEnum::DEAD | ContainerSummaryStateEnum::EMPTY) | None => ContainerState::Dead,
    }
}

/// Docker health from the status text: `Up 3 minutes (healthy)`, `(unhealthy)`,
/// `(health: starting)`. `None` without a HEALTHCHECK.
fn health_from_status(status: &str) -> Option<DockerHealth> {
    if status.contains("(health: starting)") {
        Some(DockerHealth::Starting)
    } else if status.contains("(unhealthy)") {
        Some(DockerHealth::Unhealthy)
    } else if status.contains("(healthy)") {
        Some(DockerHealth::Healthy)
    } else {
        None
    }
}

/// The exit code from `Exited (137) 2 seconds ago`.
fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    let (code, _) = rest.split_once(')')?;
    code.trim().parse().ok()
}

/// The container's event, `None` for an event without an actor id.
fn to_event(message: EventMessage) -> Option<EngineEvent> {
    let actor = message.actor?;
    let id = actor.id.filter(|id| !id.is_empty())?;
    Some(EngineEvent {
        action: message.action.unwrap_or_default(),
        id,
        labels: actor.attributes.unwrap_or_default().into_iter().collect(),
    })
}

/// Whole seconds, rounded up.
fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

fn whole_seconds_i32(duration: Duration) -> i32 {
    i32::try_from(whole_seconds(duration)).unwrap_or(i32::MAX)
}

fn nanos_i64(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

fn bytes_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The endpoint settings of a new container on each network: no aliases. The service alias is
/// given once the container is ready ([`Engine::rejoin_network`]): Docker's DNS answers an
/// alias with every endpoint carrying it, so an alias given at creation would route traffic
/// to a container that is not ready yet. Except for a container publishing host ports: moving
/// it drops its port mapping (measured: the host port refused connections for ~0.5 s), so it
/// is never moved and carries its alias from the start (see `reconcile::rotation`).
fn endpoint(spec: &ContainerSpec) -> EndpointSettings {
    EndpointSettings {
        aliases: (!spec.published_ports.is_empty() && !spec.aliases.is_empty()).then(|| spec.aliases.clone()),
        ..EndpointSettings::default()
    }
}

/// A start refused because a published host port is taken: the engine answers 500 with
/// `Bind for 0.0.0.0:8080 failed: port is already allocated` or `listen tcp4 0.0.0.0:80:
/// bind: address already in use`; the engine itself is fine.
fn port_conflict(message: &str) -> Option<EngineError> {
    let port = if let Some(rest) = message.split("Bind for ").nth(1) {
        rest.split(" failed").next()?
    } else if message.contains("address already in use") {
        message.split("listen ").nth(1)?.split(": bind").next()?.split_whitespace().last()?
    } else {
        return None;
    };
    Some(EngineError::PortConflict { port: port.to_owned(), message: message.to_owned() })
}

fn healthcheck(check: &ExecHealthcheck) -> HealthConfig {
    let mut test = Vec::with_capacity(check.command.len() + 1);
    test.push("CMD".to_owned());
    test.extend(check.command.iter().cloned());
    HealthConfig {
        test: Some(test),
        interval: Some(nanos_i64(check.interval)),
        timeout: Some(nanos_i64(check.timeout)),
        retries: Some(i64::from(check.retries)),
        start_period: Some(nanos_i64(check.start_period)),
        ..HealthConfig::default()
    }
}

/// The create request. Only the first network is joined here (API 1.41 accepts one endpoint);
/// it is also the network mode, so the container does not join the default bridge as well.
fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let mut exposed: Vec<String> = spec.exposed_ports.clone();
    for port in &spec.published_ports {
        let key = format!("{}/{}", port.container_port, port.protocol);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding { host_ip: Some(port.host_ip.clone()), host_port: Some(port.host_port.to_string()) });
    }
    let mounts: Vec<Mount> = spec
        .volumes
        .iter()
        .map(|volume| Mount {
            typ: Some(MountType::VOLUME),
            source: Some(volume.volume.clone()),
            target: Some(volume.path.clone()),
            read_only: Some(volume.read_only),
            ..Mount::default()
        })
        .collect();
    let first_network = spec.networks.first();
    let host_config = HostConfig {
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        mounts: (!mounts.is_empty()).then_some(mounts),
        init: spec.init.then_some(true),
        readonly_rootfs: Some(spec.read_only_root_filesystem),
        nano_cpus: spec.nano_cpus.map(bytes_i64),
        memory: spec.memory.map(bytes_i64),
        memory_reservation: spec.memory_reservation.map(bytes_i64),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        network_mode: first_network.cloned(),
        ..HostConfig::default()
    };
    let networking_config = first_network
        .map(|network| NetworkingConfig { endpoints_config: Some(HashMap::from([(network.clone(), endpoint(spec))])) });
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        labels: Some(to_hash_map(&spec.labels)),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        user: spec.user.clone(),
        stop_timeout: Some(i64::try_from(whole_seconds(spec.stop_timeout)).unwrap_or(i64::MAX)),
        healthcheck: spec.healthcheck.as_ref().map(healthcheck),
        host_config: Some(host_config),
        networking_config,
        ..ContainerCreateBody::default()
    }
}

/// An uncompressed tar of the files at their absolute paths (leading `/` stripped), uid/gid 0,
/// mtime 0, the spec's mode. No directory entries on purpose: the engine creates missing parents
/// itself (0755, root), while a directory entry would reset an existing directory's mode and owner
/// (e.g. `/tmp` from 1777 to 0755).
fn files_tar(files: &[ContainerFile]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for file in files {
        let path = file.path.trim_start_matches('/');
        if path.is_empty() || path.ends_with('/') {
            return Err(std::io::Error::other(format!("not a file path: {}", file.path)));
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(file.content.len() as u64);
        header.set_mode(file.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder.append_data(&mut header, path, file.content.as_slice())?;
    }
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::{PublishedPort, VolumeBinding};

    #[test]
    fn health_should_be_parsed_from_the_status_text() {
        assert_eq!(health_from_status("Up 3 seconds (healthy)"), Some(DockerHealth::Healthy));
        assert_eq!(health_from_status("Up 5 minutes (unhealthy)"), Some(DockerHealth::Unhealthy));
        assert_eq!(health_from_status("Up 1 second (health: starting)"), Some(DockerHealth::Starting));
        assert_eq!(health_from_status("Up 2 hours"), None);
        assert_eq!(health_from_status("Up 2 hours (Paused)"), None);
        assert_eq!(health_from_status("Exited (0) 3 seconds ago"), None);
        assert_eq!(health_from_status(""), None);
    }

    #[test]
    fn exit_code_should_be_parsed_from_an_exited_status() {
        assert_eq!(exit_code_from_status("Exited (137) 2 seconds ago"), Some(137));
        assert_eq!(exit_code_from_status("Exited (0) About a minute ago"), Some(0));
        assert_eq!(exit_code_from_status("Exited (-1) 1 second ago"), Some(-1));
        assert_eq!(exit_code_from_status("Up 3 seconds"), None);
        assert_eq!(exit_code_from_status("Restarting (1) 2 seconds ago"), None);
        assert_eq!(exit_code_from_status("Created"), None);
        assert_eq!(exit_code_from_status("Exited (x) 1 second ago"), None);
    }

    #[test]
    fn default_tag_should_only_apply_without_tag_or_digest() {
        assert_eq!(default_tag("nginx"), Some("latest"));
        assert_eq!(default_tag("nginx:1.27"), None);
        assert_eq!(default_tag("host:5000/a"), Some("latest"));
        assert_eq!(default_tag("host:5000/a:v1"), None);
        assert_eq!(default_tag("ghcr.io/org/app@sha256:0123abcd"), None);
        assert_eq!(default_tag("host:5000/app:v1@sha256:0123abcd"), None);
    }

    #[test]
    fn states_should_map_to_ours() {
        assert_eq!(container_state(Some(ContainerSummaryStateEnum::RUNNING)), ContainerState::Running);
        assert_eq!(container_state(Some(ContainerSummaryStateEnum::EXITED)), ContainerState::Exited);
        assert_eq!(container_state(Some(ContainerSummaryStateEnum::CREATED)), ContainerState::Created);
        assert_eq!(container_state(None), ContainerState::Dead);
    }

    #[test]
    fn errors_should_be_classified_by_status() {
        let server = |status_code| BollardError::DockerResponseServerError { status_code, message: "m".to_owned() };
        assert!(
            matches!(map_error(server(404), "container x"), EngineError::NotFound { what } if what == "container x")
        );
        assert!(matches!(map_error(server(409), "x"), EngineError::Conflict { .. }));
        assert!(matches!(map_error(server(500), "x"), EngineError::Unavailable { .. }));
        assert!(matches!(map_error(server(503), "x"), EngineError::Unavailable { .. }));
        assert!(matches!(map_error(server(400), "x"), EngineError::Other { .. }));
        assert!(matches!(map_error(BollardError::RequestTimeoutError, "x"), EngineError::Unavailable { .. }));
        assert!(matches!(
            map_error(BollardError::SocketNotFoundError("/var/run/docker.sock".to_owned()), "x"),
            EngineError::Unavailable { .. }
        ));
        let io = BollardError::IOError { err: std::io::Error::from(std::io::ErrorKind::ConnectionRefused) };
        assert!(matches!(map_error(io, "x"), EngineError::Unavailable { .. }));
        assert!(matches!(pull_error("a:b", server(500)), EngineError::Pull { image, .. } if image == "a:b"));
        assert!(matches!(
            pull_error("a", BollardError::DockerStreamError { error: "e".to_owned() }),
            EngineError::Pull { .. }
        ));
        assert!(matches!(pull_error("a", BollardError::RequestTimeoutError), EngineError::Unavailable { .. }));
    }

    #[test]
    fn port_conflicts_should_name_the_port() {
        let allocated = "driver failed programming external connectivity on endpoint s-caddy-1 (0123): Bind for 0.0.0.0:18080 failed: port is already allocated";
        assert!(
            matches!(port_conflict(allocated), Some(EngineError::PortConflict { port, .. }) if port == "0.0.0.0:18080")
        );
        let in_use = "driver failed programming external connectivity on endpoint x (y): Error starting userland proxy: listen tcp4 127.0.0.1:80: bind: address already in use";
        assert!(
            matches!(port_conflict(in_use), Some(EngineError::PortConflict { port, .. }) if port == "127.0.0.1:80")
        );
        assert!(port_conflict("OCI runtime create failed").is_none());
    }

    #[test]
    fn env_values_should_be_redacted_from_messages() {
        let env = vec!["TOKEN=s3cr3t-value".to_owned(), "X=ab".to_owned(), "=weird".to_owned()];
        let err =
            EngineError::Other { message: "invalid env TOKEN=s3cr3t-value, s3cr3t-value, =weird, X=ab".to_owned() };
        let EngineError::Other { message } = redact_error(err, &env) else { panic!("variant changed") };
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(!message.contains("weird"), "{message}");
        assert!(!message.contains("X=ab"), "{message}");
    }

    #[test]
    fn files_tar_should_hold_files_at_their_paths_without_directory_entries() {
        let files = vec![
            ContainerFile { path: "/etc/demo/x.txt".to_owned(), mode: 0o640, content: b"hello".to_vec() },
            ContainerFile { path: "/run.sh".to_owned(), mode: 0o755, content: Vec::new() },
        ];
        let bytes = files_tar(&files).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries: Vec<(String, u32, u64, u64, u64, Vec<u8>)> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let header = entry.header().clone();
                let mut content = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
                (
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    header.mode().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap(),
                    header.mtime().unwrap(),
                    content,
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("etc/demo/x.txt".to_owned(), 0o640, 0, 0, 0, b"hello".to_vec()),
                ("run.sh".to_owned(), 0o755, 0, 0, 0, Vec::new()),
            ]
        );
        assert!(files_tar(&[ContainerFile { path: "/".to_owned(), mode: 0o644, content: Vec::new() }]).is_err());
        assert!(files_tar(&[ContainerFile { path: "/a/../b".to_owned(), mode: 0o644, content: Vec::new() }]).is_err());
    }

    #[test]
    fn create_body_should_carry_the_spec() {
        let spec = ContainerSpec {
            name: "s-web-0123456789-1".to_owned(),
            image: "meme-demo:v1".to_owned(),
            entrypoint: None,
            cmd: Some(vec!["serve".to_owned()]),
            env: vec!["A=1".to_owned()],
            labels: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            exposed_ports: vec!["8080/tcp".to_owned()],
            published_ports: vec![PublishedPort {
                container_port: 8080,
                protocol: "tcp",
                host_port: 18080,
                host_ip: "127.0.0.1".to_owned(),
            }],
            volumes: vec![VolumeBinding { volume: "s_data".to_owned(), path: "/data".to_owned(), read_only: true }],
            networks: vec!["s_a".to_owned(), "s_b".to_owned()],
            aliases: vec!["web".to_owned()],
            healthcheck: Some(ExecHealthcheck {
                command: vec!["/bin/check".to_owned()],
                interval: Duration::from_secs(2),
                timeout: Duration::from_millis(500),
                retries: 3,
                start_period: Duration::ZERO,
            }),
            user: Some("1000:1000".to_owned()),
            init: false,
            read_only_root_filesystem: true,
            stop_timeout: Duration::from_millis(10_500),
            nano_cpus: Some(500_000_000),
            memory: Some(64 << 20),
            memory_reservation: None,
            files: Vec::new(),
        };
        let body = create_body(&spec);
        assert_eq!(body.exposed_ports, Some(vec!["8080/tcp".to_owned()]));
        assert_eq!(body.stop_timeout, Some(11));
        assert_eq!(body.entrypoint, None);
        let health = body.healthcheck.unwrap();
        assert_eq!(health.test, Some(vec!["CMD".to_owned(), "/bin/check".to_owned()]));
        assert_eq!(health.interval, Some(2_000_000_000));
        assert_eq!(health.timeout, Some(500_000_000));
        let host = body.host_config.unwrap();
        assert_eq!(host.init, None);
        assert_eq!(host.network_mode.as_deref(), Some("s_a"));
        assert_eq!(host.readonly_rootfs, Some(true));
        let bindings = host.port_bindings.unwrap();
        let binding = &bindings["8080/tcp"].as_ref().unwrap()[0];
        assert_eq!((binding.host_ip.as_deref(), binding.host_port.as_deref()), (Some("127.0.0.1"), Some("18080")));
        let mount = &host.mounts.unwrap()[0];
        assert_eq!(
            (mount.typ, mount.source.as_deref(), mount.read_only),
            (Some(MountType::VOLUME), Some("s_data"), Some(true))
        );
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints.len(), 1);
        assert_eq!(endpoints["s_a"].aliases, Some(vec!["web".to_owned()]), "host ports: the alias from the start");
        let unpublished = ContainerSpec { published_ports: Vec::new(), ..spec };
        let endpoints = create_body(&unpublished).networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints["s_a"].aliases, None, "otherwise the alias comes when the container is ready");
    }
}
