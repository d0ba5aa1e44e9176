//! The dataflow's node ids, port names and the per-graph facts a graph builder hands a node,
//! defined once: dataflow.yml, the replay graph builder and the nodes all use these names.

use std::collections::BTreeMap;

/// Node ids (and the `vigil node <name>` each runs, but for the camera's place in a replay).
pub mod node {
    pub const CAMERA: &str = "camera";
    pub const PREPROCESS: &str = "preprocess";
    pub const INFER: &str = "infer";
    pub const TRACK: &str = "track";
    pub const PREVIEW: &str = "preview";
    pub const MONITOR: &str = "monitor";
    pub const SINK: &str = "sink";
    /// What runs in the camera's place during a replay.
    pub const REPLAY: &str = "replay";
}

/// Port (output and input) names.
pub mod port {
    /// camera/replay → preprocess, track, preview, monitor: the JPEG.
    pub const FRAME: &str = "frame";
    /// preprocess → infer: the network input (`tensor_K` with several infer workers).
    pub const TENSOR: &str = "tensor";
    /// infer → track (`detections_K` from `infer_K`).
    pub const DETECTIONS: &str = "detections";
    /// infer → preprocess: free for a frame (`ready_K` from `infer_K`).
    pub const READY: &str = "ready";
    /// preprocess → track: frames not sent to the detector, and why (interval, busy, bad
    /// frame, detector down).
    pub const SKIPPED: &str = "skipped";
    /// infer → monitor: started / rejected (`status_K` from `infer_K`).
    pub const STATUS: &str = "status";
    /// camera/status → monitor, as the monitor's input: the camera's outages.
    pub const CAMERA_STATUS: &str = "camera_status";
    /// preprocess → monitor: which infer process is active, which stands by.
    pub const ROLES: &str = "roles";
    /// track → preview, monitor, sink.
    pub const RESULT: &str = "result";
    /// preview → monitor.
    pub const SHOWN: &str = "shown";
    /// sink → replay (lock-step).
    pub const ACK: &str = "ack";
    /// A timer input (the sink's acks, infer's repeated `ready`).
    pub const TICK: &str = "tick";
}

/// `tensor_k`, `detections_k`, `status_k`: a port of the `k`-th infer worker.
#[must_use]
pub fn worker_port(port: &str, k: usize) -> String {
    format!("{port}_{k}")
}

/// The port of worker `k` of `workers` infer processes: the plain name with one (the graph as
/// declared), `port_k` with several.
#[must_use]
pub fn port_of(port: &str, k: usize, workers: usize) -> String {
    if workers > 1 {
        worker_port(port, k)
    } else {
        port.to_owned()
    }
}

/// `infer_k`: the id of the `k`-th infer worker.
#[must_use]
pub fn worker_id(k: usize) -> String {
    format!("{}_{k}", node::INFER)
}

/// Which worker a port name belongs to: `detections_1` → (`detections`, Some(1)),
/// `detections` → (`detections`, None).
#[must_use]
pub fn split_worker_port(name: &str) -> (&str, Option<usize>) {
    match name.rsplit_once('_') {
        Some((base, k)) if !base.is_empty() => match k.parse() {
            Ok(k) => (base, Some(k)),
            Err(_) => (name, None),
        },
        _ => (name, None),
    }
}

/// `source` of a node's input: `node/port`.
#[must_use]
pub fn source(node: &str, port: &str) -> String {
    format!("{node}/{port}")
}

/// Per-graph facts the graph builder hands a node in its `env:` — what the graph is, not how
/// vigil is configured (that is vigil.yml).
pub mod env {
    /// replay: the recording to play.
    pub const RECORDING: &str = "VIGIL_RECORDING";
    /// replay: `lockstep` or `realtime`.
    pub const MODE: &str = "VIGIL_MODE";
    /// replay: frames in flight in lock-step.
    pub const WINDOW: &str = "VIGIL_WINDOW";
    /// replay: resend a frame not acknowledged within this many ms.
    pub const RESEND_MS: &str = "VIGIL_RESEND_MS";
    /// track, preprocess: `strict` (every frame inferred and released in order: lock-step
    /// replay) or `live` (the device, realtime replay).
    pub const ORDER: &str = "VIGIL_ORDER";
    /// replay (realtime): play at this many frames per second instead of the recorded times.
    pub const FPS: &str = "VIGIL_FPS";
    /// sink: where to write the run's summary (frames by status, latency histogram), JSON.
    pub const STATS: &str = "VIGIL_STATS";
    /// replay: play the recording this many times in a row.
    pub const LOOPS: &str = "VIGIL_LOOPS";
    /// sink: the JSON lines file.
    pub const OUT: &str = "VIGIL_OUT";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ports_round_trip() {
        assert_eq!(worker_port(port::TENSOR, 3), "tensor_3");
        assert_eq!(split_worker_port("detections_12"), ("detections", Some(12)));
        assert_eq!(split_worker_port("detections"), ("detections", None));
        assert_eq!(split_worker_port("frame_x"), ("frame_x", None));
        assert_eq!(worker_id(1), "infer_1");
        assert_eq!(port_of(port::READY, 0, 1), "ready");
        assert_eq!(port_of(port::READY, 1, 2), "ready_1");
    }
}

/// How the track node releases results (a graph fact, [`env::ORDER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// The device: paced by the camera's frames, never waiting long for the detector.
    #[default]
    Live,
    /// Replay: every frame, strictly in order.
    Strict,
}

impl Order {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Strict => "strict",
        }
    }
}

impl std::str::FromStr for Order {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "" | "live" => Ok(Self::Live),
            "strict" => Ok(Self::Strict),
            other => Err(format!("`{other}`: expected strict or live")),
        }
    }
}

/// A dora dataflow file, typed: what dataflow.yml holds and what a replay graph is built as.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataflow {
    pub nodes: Vec<NodeSpec>,
}

/// One node of a dataflow, with the dora keys vigil uses.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub id: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Input>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_delay: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restart_delay: Option<f64>,
}

impl NodeSpec {
    /// The `vigil node <name>` this node runs, if it runs one.
    #[must_use]
    pub fn vigil_node(&self) -> Option<&str> {
        self.args.as_deref()?.strip_prefix("node ")
    }
}

/// A node input: `node/port`, or with a queue size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Input {
    Source(String),
    Queued {
        source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_size: Option<usize>,
    },
}

impl Input {
    #[must_use]
    pub fn source(&self) -> &str {
        match self {
            Self::Source(s) | Self::Queued { source: s, .. } => s,
        }
    }

    /// The node this input reads from (`None` for dora's own timers).
    #[must_use]
    pub fn from_node(&self) -> Option<&str> {
        let (node, _) = self.source().split_once('/')?;
        (node != "dora").then_some(node)
    }

    /// The same input reading `source`, queue size kept.
    #[must_use]
    pub fn with_source(&self, source: String) -> Self {
        match self {
            Self::Source(_) => Self::Source(source),
            Self::Queued { queue_size, .. } => Self::Queued {
                source,
                queue_size: *queue_size,
            },
        }
    }
}

impl Dataflow {
    pub fn parse(yaml: &str) -> Result<Self, serde_yaml::Error> {
        serde_yaml::from_str(yaml)
    }

    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        serde_yaml::to_string(self)
    }

    #[must_use]
    pub fn node(&self, id: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Every input names a declared output of a node in the graph (or a dora timer), and no
    /// id is declared twice.
    pub fn check(&self) -> Result<(), String> {
        let mut outputs: BTreeMap<&str, &[String]> = BTreeMap::new();
        for n in &self.nodes {
            if outputs.insert(&n.id, &n.outputs).is_some() {
                return Err(format!("node id `{}` declared twice", n.id));
            }
        }
        for n in &self.nodes {
            for (name, input) in &n.inputs {
                let source = input.source();
                if source.starts_with("dora/timer/") {
                    continue;
                }
                let ok = source.split_once('/').is_some_and(|(from, out)| {
                    outputs
                        .get(from)
                        .is_some_and(|o| o.iter().any(|x| x == out))
                });
                if !ok {
                    return Err(format!(
                        "node `{}` input `{name}` reads `{source}`, which no node declares",
                        n.id
                    ));
                }
            }
        }
        Ok(())
    }
}
