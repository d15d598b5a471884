/**
 * The simulated node's eBPF data plane: a pod's ingress policy enforced by
 * a TC classifier on its host-side veth (egress, towards the pod) that drops
 * with TC_ACT_SHOT, as the VPC CNI network policy agent does. The program is
 * native/bpf/sim-tc-policy.bpf.c, built with the addon; its maps are driven
 * with bpftool: isolate the pod, allow (source, protocol, port), and read the
 * program's own drop counters (the ground truth for deny records).
 */
import { existsSync } from 'node:fs';
import { run } from './netns.js';
import type { SimNode } from './simnode.js';

/** What a classifier guards: an address behind a host-side veth (a pod, or the simulated internet). */
export interface TcTarget {
  readonly ip: string;
  readonly hostVeth: string;
  readonly name: string;
}

export const SIM_TC_OBJECT = new URL(
  '../../native/build/Release/sim-tc-policy.bpf.o',
  import.meta.url,
).pathname;

const PROTOS = { tcp: 6, udp: 17, icmp: 1 } as const;

function hexBytes(bytes: readonly number[]): string[] {
  return bytes.map((b) => `0x${b.toString(16).padStart(2, '0')}`);
}

function ipBytes(ip: string): number[] {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`tc policy: not an IPv4 address: ${ip}`);
  }
  return parts;
}

function le(n: number, bytes: number): number[] {
  return Array.from({ length: bytes }, (_, i) => Math.floor(n / 256 ** i) % 256);
}

export class TcPolicy {
  private constructor(
    readonly target: TcTarget,
    private readonly maps: { allow: number; config: number; drops: number },
  ) {}

  /** Attaches the classifier to the target's host-side veth (egress: traffic to the pod). */
  static attach(node: SimNode, target: TcTarget): TcPolicy {
    if (!existsSync(SIM_TC_OBJECT)) {
      throw new Error(
        `the simulated TC classifier is not built (${SIM_TC_OBJECT}); install clang, bpftool and libbpf-dev, then npm run build:native`,
      );
    }
    const dev = target.hostVeth;
    node.exec(['tc', 'qdisc', 'add', 'dev', dev, 'clsact']);
    node.exec([
      'tc',
      'filter',
      'add',
      'dev',
      dev,
      'egress',
      'bpf',
      'direct-action',
      'obj',
      SIM_TC_OBJECT,
      'sec',
      'tc',
    ]);
    const shown = node.exec(['tc', 'filter', 'show', 'dev', dev, 'egress']);
    const id = /\bid (\d+)\b/.exec(shown)?.[1];
    if (!id) throw new Error(`tc policy: no BPF program attached to ${dev}: ${shown}`);
    const prog = JSON.parse(run(['bpftool', 'prog', 'show', 'id', id, '-j'])) as {
      map_ids?: number[];
    };
    const maps: Record<string, number> = {};
    for (const m of prog.map_ids ?? []) {
      const info = JSON.parse(run(['bpftool', 'map', 'show', 'id', String(m), '-j'])) as {
        name: string;
      };
      maps[info.name] = m;
    }
    const { allow, config, drops } = maps;
    if (allow === undefined || config === undefined || drops === undefined) {
      throw new Error(`tc policy: program ${id} lacks its maps (has ${Object.keys(maps)})`);
    }
    return new TcPolicy(target, { allow, config, drops });
  }

  /** Isolated: flows into the pod pass only when allowed. */
  isolate(on = true): void {
    this.update(this.maps.config, le(0, 4), le(on ? 1 : 0, 4));
  }

  /** Allows flows from `from` (undefined: any source) with this protocol and destination port. */
  allow(from: string | undefined, proto: keyof typeof PROTOS, port = 0): void {
    const key = [
      ...(from === undefined ? [0, 0, 0, 0] : ipBytes(from)),
      ...ipBytes(this.target.ip),
      Math.floor(port / 256),
      port % 256,
      PROTOS[proto],
      0,
    ];
    this.update(this.maps.allow, key, [1]);
  }

  /** The program's own drop counters: packets and IP bytes. */
  counters(): { packets: number; bytes: number } {
    const rows = JSON.parse(
      run(['bpftool', 'map', 'dump', 'id', String(this.maps.drops), '-j']),
    ) as { formatted?: { key: number; value: number } }[];
    const at = (k: number) => rows.find((r) => r.formatted?.key === k)?.formatted?.value ?? 0;
    return { packets: at(0), bytes: at(1) };
  }

  private update(map: number, key: number[], value: number[]): void {
    run([
      'bpftool',
      'map',
      'update',
      'id',
      String(map),
      'key',
      ...hexBytes(key),
      'value',
      ...hexBytes(value),
    ]);
  }
}
