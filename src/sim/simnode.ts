/**
 * A simulated Kubernetes node built from network namespaces, the Calico way:
 *
 *   pod netns                 node netns (conntrack, iptables, the agent)      sink netns
 *   eth0 10.244.1.3/32 ──veth── <base>v0  proxy_arp, route 10.244.1.3/32          "the internet"
 *   default via 169.254.1.1                169.254.1.1/32 dev lo (proxy ARP)      eth0 203.0.113.10/32
 *   pod netns ... ──veth── <base>v1 ...    <base>vs ─────────────────────veth──   eth0 10.99.0.10/32
 *                                           host endpoints: /32 addresses on lo
 *
 * Every pod's traffic crosses the node namespace's FORWARD chain, so the
 * node's conntrack table and its NFLOG rules see it, as on a real node. Two
 * kernel facts this relies on (measured here): conntrack in a namespace
 * tracks nothing until a rule there needs it, so the node gets a
 * `--ctstate RELATED,ESTABLISHED -j ACCEPT` rule at once; and proxy ARP answers
 * for 169.254.1.1 only when the node has a route to it (here via lo).
 */

import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { stringify } from 'yaml';
import {
  createNamespace,
  inNs,
  removeNamespace,
  run,
  spawnInNs,
  stopProcess,
  uniqueName,
} from './netns.js';

export interface PodSpec {
  namespace: string;
  name: string;
  ip: string;
  generateName?: string;
  labels?: Record<string, string>;
}

export interface SimPod extends Readonly<PodSpec> {
  readonly netns: string;
  readonly hostVeth: string;
  readonly labels: Record<string, string>;
}

export interface SimSink {
  readonly netns: string;
  readonly ips: readonly string[];
}

export interface SimNodeOptions {
  nodeName?: string;
  /** nf_conntrack_tcp_timeout_time_wait in the node netns (default 2 s, so DESTROY comes fast). */
  timeWaitSeconds?: number;
  /** The node's own address(es) seen by pods (host endpoints). */
  hostIps?: string[];
}

export class SimNode {
  readonly base: string;
  readonly netns: string;
  readonly nodeName: string;
  readonly pods = new Map<string, SimPod>();
  readonly hostIps: string[] = [];
  sink: SimSink | undefined;
  private podSeq = 0;
  private readonly children = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(base: string, nodeName: string) {
    this.base = base;
    this.netns = `${base}n`;
    this.nodeName = nodeName;
  }

  static async create(options: SimNodeOptions = {}): Promise<SimNode> {
    const node = new SimNode(uniqueName('ft', 5), options.nodeName ?? 'node-1');
    try {
      node.setUp(options);
    } catch (err) {
      await node.destroy();
      throw err;
    }
    return node;
  }

  private setUp(options: SimNodeOptions): void {
    createNamespace(this.netns);
    const sysctls = [
      'net.ipv4.ip_forward=1',
      'net.netfilter.nf_conntrack_acct=1',
      'net.netfilter.nf_conntrack_timestamp=1',
      `net.netfilter.nf_conntrack_tcp_timeout_time_wait=${options.timeWaitSeconds ?? 2}`,
      'net.ipv4.conf.all.rp_filter=0',
      'net.ipv4.conf.default.rp_filter=0',
    ];
    this.exec(['sysctl', '-q', '-w', ...sysctls]);
    this.exec(['ip', 'route', 'add', '169.254.1.1/32', 'dev', 'lo']);
    // Activates conntrack in this namespace and lets established traffic
    // bypass policy, so policy rules (and NFLOG) see each connection's first packet.
    for (const chain of ['FORWARD', 'INPUT', 'OUTPUT']) {
      this.exec([
        'iptables',
        '-w',
        '-A',
        chain,
        '-m',
        'conntrack',
        '--ctstate',
        'RELATED,ESTABLISHED',
        '-j',
        'ACCEPT',
      ]);
    }
    for (const ip of options.hostIps ?? ['10.0.0.1']) this.addHostEndpoint(ip);
  }

  /** Runs argv in the node namespace. */
  exec(argv: readonly string[], input?: string): string {
    return run(inNs(this.netns, argv), input === undefined ? {} : { input });
  }

  spawn(argv: readonly string[], options?: SpawnOptions): ChildProcess {
    return this.track(spawnInNs(this.netns, argv, options));
  }

  track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /**
   * A namespace joined to the node by a veth pair, Calico style: its addresses
   * as /32 on eth0, default route via 169.254.1.1, and on the node side proxy
   * ARP and a /32 route per address.
   */
  private plug(netns: string, hostVeth: string, ips: readonly string[]): void {
    createNamespace(netns);
    run(['ip', 'link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
    run(['ip', 'link', 'set', hostVeth, 'netns', this.netns]);
    const inside = (argv: string[]) => run(inNs(netns, argv));
    for (const ip of ips) inside(['ip', 'addr', 'add', `${ip}/32`, 'dev', 'eth0']);
    inside(['ip', 'link', 'set', 'eth0', 'up']);
    inside(['ip', 'route', 'add', '169.254.1.1', 'dev', 'eth0']);
    inside(['ip', 'route', 'add', 'default', 'via', '169.254.1.1']);
    this.exec(['ip', 'link', 'set', hostVeth, 'up']);
    this.exec([
      'sysctl',
      '-q',
      '-w',
      `net.ipv4.conf.${hostVeth}.proxy_arp=1`,
      `net.ipv4.neigh.${hostVeth}.proxy_delay=0`,
    ]);
    for (const ip of ips) this.exec(['ip', 'route', 'add', `${ip}/32`, 'dev', hostVeth]);
  }

  addPod(spec: PodSpec): SimPod {
    const index = this.podSeq++;
    const netns = `${this.base}p${index}`;
    const hostVeth = `${this.base}v${index}`;
    this.plug(netns, hostVeth, [spec.ip]);
    const pod: SimPod = { ...spec, labels: spec.labels ?? {}, netns, hostVeth };
    this.pods.set(`${spec.namespace}/${spec.name}`, pod);
    return pod;
  }

  /** Removes a pod (its namespace and veth); its IP may then be given to a new pod. */
  removePod(pod: SimPod): void {
    removeNamespace(pod.netns);
    this.pods.delete(`${pod.namespace}/${pod.name}`);
    try {
      this.exec(['ip', 'route', 'del', `${pod.ip}/32`]);
    } catch {}
  }

  /** A ClusterIP-style service: TCP to vip:port is DNATed to backend:backendPort in the node namespace. */
  addServiceDnat(vip: string, port: number, backend: string, backendPort: number): void {
    this.exec([
      'iptables',
      '-w',
      '-t',
      'nat',
      '-A',
      'PREROUTING',
      '-d',
      vip,
      '-p',
      'tcp',
      '--dport',
      String(port),
      '-j',
      'DNAT',
      '--to-destination',
      `${backend}:${backendPort}`,
    ]);
  }

  addHostEndpoint(ip: string): void {
    this.exec(['ip', 'addr', 'add', `${ip}/32`, 'dev', 'lo']);
    this.hostIps.push(ip);
  }

  /**
   * The outside world: a namespace owning a public-looking and a private
   * address, reached through the node, so egress has somewhere to go without
   * leaving the machine.
   */
  addSink(ips: readonly string[] = ['203.0.113.10', '10.99.0.10']): SimSink {
    if (this.sink) return this.sink;
    const netns = `${this.base}s`;
    this.plug(netns, `${this.base}vs`, ips);
    this.sink = { netns, ips };
    return this.sink;
  }

  /** The endpoints file (DESIGN.md "Contracts") describing this node's pods. */
  endpointsYaml(extraPods: readonly PodSpec[] = []): string {
    return stringify({
      nodes: [{ name: this.nodeName, ips: this.hostIps }],
      pods: [
        ...[...this.pods.values()].map((p) => ({
          namespace: p.namespace,
          name: p.name,
          ...(p.generateName ? { generateName: p.generateName } : {}),
          ip: p.ip,
          node: this.nodeName,
          labels: p.labels,
        })),
        ...extraPods,
      ],
    });
  }

  /** Kills every process started on this node and removes its namespaces. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.children].map((c) => stopProcess(c, 1_000)));
    for (const pod of this.pods.values()) removeNamespace(pod.netns);
    this.pods.clear();
    if (this.sink) removeNamespace(this.sink.netns);
    removeNamespace(this.netns);
  }
}
