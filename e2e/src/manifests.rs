//! Manifest builders for e2e stacks: small Deployments on the locally built test images.

/// The Stack document (`{stack}` is replaced by the test's stack name).
pub const STACK: &str = "apiVersion: memeit.pro/v1alpha1
kind: Stack
metadata:
  name: \"{stack}\"
spec:
  networks: [{name: internal}]
  volumes: [{name: data}]
  env: [{name: ENV, value: e2e}]
";

/// A Deployment of the test server.
#[derive(Clone, Debug)]
pub struct Service {
    name: String,
    image: String,
    replicas: u32,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    pull: String,
}

impl Service {
    /// `name` running `image` (e.g. `meme-demo:v1`), one replica, an httpGet /health check.
    #[must_use]
    pub fn new(name: &str, image: &str) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            replicas: 1,
            extra: Vec::new(),
            env: Vec::new(),
            pull: "Never".into(),
        }
    }

    /// The image pull policy (default `Never`: test images are built locally).
    #[must_use]
    pub fn pull(mut self, policy: &str) -> Self {
        self.pull = policy.into();
        self
    }

    /// Replicas.
    #[must_use]
    pub fn replicas(mut self, n: u32) -> Self {
        self.replicas = n;
        self
    }

    /// An env var.
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// A raw line (or lines) under `spec:`, indented by two spaces already.
    #[must_use]
    pub fn spec(mut self, lines: &str) -> Self {
        self.extra.push(lines.into());
        self
    }

    /// The YAML document.
    #[must_use]
    pub fn yaml(&self) -> String {
        let env: String = self.env.iter().map(|(k, v)| format!("    - {{name: {k}, value: \"{v}\"}}\n")).collect();
        let has_hc = self.extra.iter().any(|e| e.contains("healthCheck"));
        let hc = if has_hc {
            String::new()
        } else {
            "  healthCheck:\n    httpGet: {path: /health, port: 8080}\n    interval: 1s\n    timeout: 1s\n".to_owned()
        };
        let has_deadline = self.extra.iter().any(|e| e.contains("progressDeadline"));
        let deadline = if has_deadline { "" } else { "  progressDeadline: 30s\n" };
        format!(
            "apiVersion: memeit.pro/v1alpha1\nkind: Deployment\nmetadata:\n  name: {}\nspec:\n  image: {}\n  imagePullPolicy: {}\n  replicas: {}\n  init: true\n  stopGracePeriod: 2s\n  networks: [internal]\n  labels: {{e2e.memeit.run: \"{{id}}\"}}\n  ports: [{{containerPort: 8080}}]\n{hc}{deadline}  env:\n    - {{name: SERVICE, value: {}}}\n{env}{}",
            self.name,
            self.image,
            self.pull,
            self.replicas,
            self.name,
            self.extra.concat()
        )
    }
}
