//! `make dev-cluster`: a real control plane, an OCI registry, NATS, Redis, the operator and two host-agents
//! on this machine, in the foreground, for trying Weft with kubectl. Ctrl-C stops everything.

use std::io::BufRead;

use weft_e2e::Cluster;

fn main() {
    let agents = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let cluster = Cluster::start(agents);
    let kubeconfig = cluster.control_plane.kubeconfig.display();
    println!("Weft dev cluster is up.\n");
    println!("  export KUBECONFIG={kubeconfig}");
    println!(
        "  alias kubectl={}      # the same release as the API server",
        weft_e2e::registry::tool("kubectl").display()
    );
    println!("  kubectl get hosts");
    for agent in cluster.agents.values() {
        println!(
            "  host {}: HTTP http://{}  admin http://{}",
            agent.name,
            agent.http(),
            agent.admin()
        );
    }
    println!(
        "  operator metrics: http://{}/metrics",
        cluster.operator_metrics
    );
    println!(
        "  registry: {}   (target/debug/host-agent push examples/build/hello-http.wasm {}/examples/hello-http:1.0)",
        cluster.registry.addr, cluster.registry.addr
    );
    println!(
        "  nats: {}   (backend: nats for keyvalue, blobstore, messaging)\n  redis: {}   (backend: redis for keyvalue)",
        cluster.nats.url(),
        cluster.redis.url()
    );
    println!(
        "  logs: {}\n\nPress Enter or Ctrl-C to stop.",
        cluster.control_plane.dir().display()
    );
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
}
