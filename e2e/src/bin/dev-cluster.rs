//! `make dev-cluster`: a single-node Kubernetes cluster on this machine, without Docker (see
//! `weft_e2e::node`): the control plane, a kubelet with containerd and runc, an OCI registry,
//! NATS, and Weft installed by `helm install` from the chart with images built here. Prints the
//! KUBECONFIG and what to try, then runs until SIGINT or SIGTERM and stops everything it started.

use weft_e2e::{NatsServer, Node};

fn main() {
    // Blocked before any thread or process starts, then waited for below.
    let signals = block_stop_signals();
    let node = Node::start();
    node.push_images("dev");
    let nats = NatsServer::on(weft_e2e::node::GATEWAY, weft_e2e::process::free_port());
    let plane = &node.control_plane;
    plane.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "weft-nats",
        "-n",
        "weft-system",
        &format!("--from-literal=url={}", nats.url()),
    ]);
    let took = node.helm_install(
        "dev",
        &[
            "hostAgent.backends.nats.urlSecret.name=weft-nats",
            "hostAgent.backends.nats.urlSecret.key=url",
        ],
    );
    let hosts = plane.kubectl_ok(&["get", "hosts", "-o", "wide"]);
    let kubectl = weft_e2e::registry::tool("kubectl");
    println!("Weft dev cluster is up (helm install -> all Pods Ready in {took:.1?}).\n");
    println!("  export KUBECONFIG={}", plane.kubeconfig.display());
    println!(
        "  alias kubectl={}      # the same release as the API server",
        kubectl.display()
    );
    println!("  kubectl get pods -n weft-system; kubectl get hosts\n");
    println!("{hosts}");
    let registry = &node.registry.addr;
    println!("  registry: {registry}   (plain HTTP; Pods and this machine both reach it)");
    println!(
        "    target/debug/host-agent push --insecure-registry {registry} examples/build/hello-http.wasm {registry}/examples/hello-http:1.0"
    );
    println!(
        "    sed 's|build/hello-http.wasm|{registry}/examples/hello-http:1.0|' examples/hello-http.yaml | kubectl apply -f -"
    );
    println!(
        "    curl -H 'Host: hello.localhost' http://<ADDRESS>:8080/   (a Host's address above)"
    );
    println!(
        "  nats: {}   (Secret weft-nats; backend: nats for keyvalue, blobstore, messaging)",
        nats.url()
    );
    println!(
        "  logs: {}\n\nCtrl-C (or kill -TERM {}) stops it.",
        plane.dir().display(),
        std::process::id()
    );
    wait_for(&signals);
    println!("stopping");
}

fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local signal set, before other threads exist.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for(signals: &libc::sigset_t) {
    let mut signal = 0;
    // SAFETY: waits for one of the signals blocked above.
    unsafe {
        libc::sigwait(signals, &mut signal);
    }
}
