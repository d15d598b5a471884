/**
 * The kernel drop source (denies.source kernel/both): the addon built, the
 * kernel's BTF with its drop reasons, the kfree_skb tracepoint, the
 * capabilities to load a tracing program, an actual load, and which deny
 * source the agent will use, and why. With denies.source absent a failure
 * only warns: the agent then uses NFLOG alone.
 */
import { existsSync, readFileSync } from 'node:fs';
import {
  KernelDropListener,
  type KernelDropsUnavailable,
  kernelBtf,
  loadKdropsAddon,
} from '../capture/kdrops-listener.js';
import type { Config } from '../config.js';
import { type CheckResult, fail, ok, skip, warn } from './types.js';

const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

/** The effective capability set of this process (from /proc/self/status). */
export function effectiveCapabilities(status = readFileSync('/proc/self/status', 'utf8')): bigint {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex === undefined ? 0n : BigInt(`0x${hex}`);
}

export function hasCapability(caps: bigint, bit: number): boolean {
  return ((caps >> BigInt(bit)) & 1n) === 1n;
}

const CAPS_FIX =
  'add the BPF and PERFMON capabilities: deploy/kubernetes/components/kernel-drops (kustomize component) does, the container stays unprivileged';

export function checkKernelDrops(
  config: Config,
  caps: bigint = effectiveCapabilities(),
): CheckResult[] {
  const asked = config.denies.source;
  if (asked === 'nflog') {
    return [
      ok(
        'denies.source',
        'deny source',
        'nflog (denies.source: nflog): kernel drop events are not read',
      ),
      skip('kdrops', 'kernel drop source', 'denies.source: nflog'),
    ];
  }
  // Absent: the agent falls back to nflog, so a missing piece is a warning, not a failure.
  const bad = (id: string, title: string, found: string, fix: string) =>
    asked === undefined ? warn(id, title, found, fix) : fail(id, title, found, fix);
  const out: CheckResult[] = [];
  let usable = true;
  const note = (r: CheckResult) => {
    out.push(r);
    if (r.status === 'fail' || r.status === 'warn') usable = false;
  };

  try {
    loadKdropsAddon();
    out.push(
      ok('kdrops.addon', 'kernel drop addon', 'built (native/build/Release/flowtrail_kdrops.node)'),
    );
  } catch (err) {
    const e = err as KernelDropsUnavailable;
    note(bad('kdrops.addon', 'kernel drop addon', e.message, e.fix));
    out.push(decision(asked, false, e.message));
    return out;
  }

  const btfPath = '/sys/kernel/btf/vmlinux';
  let tracepoint = false;
  if (!existsSync(btfPath)) {
    note(
      bad(
        'kdrops.btf',
        'kernel BTF and drop reasons',
        `${btfPath} is missing: the kernel has no BTF`,
        'use a kernel >= 5.17 built with CONFIG_DEBUG_INFO_BTF=y (EKS AMIs: AL2023, Bottlerocket); else denies.source: nflog',
      ),
    );
  } else {
    try {
      const btf = kernelBtf();
      const policy = ['NETFILTER_DROP', 'TC_INGRESS', 'TC_EGRESS'].filter((n) =>
        btf.names.includes(n),
      );
      tracepoint = btf.tracepoint;
      out.push(
        ok(
          'kdrops.btf',
          'kernel BTF and drop reasons',
          `${btf.names.length} drop reasons, policy ones: ${policy.join(', ') || 'none'}`,
        ),
      );
    } catch (err) {
      const e = err as KernelDropsUnavailable;
      note(bad('kdrops.btf', 'kernel BTF and drop reasons', e.message, e.fix));
    }
    note(
      tracepoint
        ? ok(
            'kdrops.tracepoint',
            'skb:kfree_skb tracepoint',
            'btf_trace_kfree_skb is in the kernel BTF',
          )
        : bad(
            'kdrops.tracepoint',
            'skb:kfree_skb tracepoint',
            'the kernel BTF has no btf_trace_kfree_skb',
            'use a kernel >= 5.17 (drop reasons on kfree_skb); else denies.source: nflog',
          ),
    );
  }

  const bpf = hasCapability(caps, CAP_BPF);
  const perfmon = hasCapability(caps, CAP_PERFMON);
  const admin = hasCapability(caps, CAP_SYS_ADMIN);
  note(
    (bpf && perfmon) || admin
      ? ok(
          'kdrops.capabilities',
          'capabilities to load a tracing program',
          bpf && perfmon ? 'CAP_BPF and CAP_PERFMON' : 'CAP_SYS_ADMIN',
        )
      : bad(
          'kdrops.capabilities',
          'capabilities to load a tracing program',
          `missing ${[bpf ? '' : 'CAP_BPF', perfmon ? '' : 'CAP_PERFMON'].filter(Boolean).join(' and ')}`,
          CAPS_FIX,
        ),
  );

  let why = '';
  if (usable) {
    const listener = new KernelDropListener({ onDrops: () => {}, ref: false });
    try {
      listener.start();
      out.push(
        ok('kdrops.load', 'kfree_skb program load and attach', 'loaded, attached and detached'),
      );
    } catch (err) {
      const e = err as KernelDropsUnavailable;
      why = e.message;
      note(bad('kdrops.load', 'kfree_skb program load and attach', e.message, e.fix ?? CAPS_FIX));
    } finally {
      listener.close();
    }
  } else {
    why = out.find((c) => c.status !== 'ok')?.found ?? '';
    out.push(
      skip('kdrops.load', 'kfree_skb program load and attach', 'a check above did not pass'),
    );
  }
  out.push(decision(asked, usable, why));
  return out;
}

function decision(asked: Config['denies']['source'], usable: boolean, why: string): CheckResult {
  const title = 'deny source';
  if (usable) {
    return ok(
      'denies.source',
      title,
      asked
        ? `${asked} (denies.source: ${asked})`
        : 'both: NFLOG and kernel drop events (the default where the kernel source loads); an NFLOG-logged iptables drop counts once',
    );
  }
  if (asked === undefined) {
    return warn(
      'denies.source',
      title,
      `nflog only: the kernel drop source cannot run here (${why}); drops without an NFLOG rule (VPC CNI agent, Cilium, Calico eBPF, plain DROP) are not reported`,
      'fix the checks above, or set denies.source: nflog to say this is intended',
    );
  }
  return fail(
    'denies.source',
    title,
    `denies.source: ${asked} needs the kernel drop source, which cannot run here (${why}): the agent will not start`,
    'fix the checks above, or set denies.source: nflog',
  );
}
