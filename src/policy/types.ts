/**
 * Kubernetes NetworkPolicy (networking.k8s.io/v1) as the evaluator reads it,
 * and the cluster it is evaluated in. The policy types mirror the API
 * object's spec field for field (camelCase, as `kubectl get -o yaml` and
 * @kubernetes/client-node give them), already validated by parse.ts.
 */

export type Labels = Readonly<Record<string, string>>;

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  /** Non-empty for In/NotIn, empty for Exists/DoesNotExist (API validation). */
  readonly values?: readonly string[];
}

/** matchLabels AND every matchExpression; an empty selector selects everything. */
export interface LabelSelector {
  readonly matchLabels?: Labels;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

export interface IPBlock {
  readonly cidr: string;
  /** Each a strict subset of cidr (API validation). */
  readonly except?: readonly string[];
}

/** Either ipBlock, or at least one of podSelector/namespaceSelector (API validation). */
export interface NetworkPolicyPeer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: IPBlock;
}

export type PortProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface NetworkPolicyPort {
  /** Default TCP. */
  readonly protocol?: PortProtocol;
  /** A number, or a container port's name on the destination pod; absent = every port. */
  readonly port?: number | string;
  /** With a numeric port: the range port..endPort, both included. */
  readonly endPort?: number;
}

export interface NetworkPolicyIngressRule {
  /** Absent or empty: from everywhere. */
  readonly from?: readonly NetworkPolicyPeer[];
  /** Absent or empty: every port (and every protocol). */
  readonly ports?: readonly NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  readonly to?: readonly NetworkPolicyPeer[];
  readonly ports?: readonly NetworkPolicyPort[];
}

export type PolicyType = 'Ingress' | 'Egress';

export interface NetworkPolicySpec {
  /** Selects pods in the policy's own namespace; {} selects all of them. */
  readonly podSelector: LabelSelector;
  /** Absent or empty: Ingress, plus Egress when `egress` has rules (the API's defaulting). */
  readonly policyTypes?: readonly PolicyType[];
  readonly ingress?: readonly NetworkPolicyIngressRule[];
  readonly egress?: readonly NetworkPolicyEgressRule[];
}

export interface NetworkPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly spec: NetworkPolicySpec;
}

/** A pod's declared container port, for named ports. */
export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  /** Default TCP. */
  readonly protocol?: PortProtocol;
}

export interface PolicyNamespace {
  readonly name: string;
  /** `kubernetes.io/metadata.name` is added when absent, as the control plane sets it. */
  readonly labels?: Labels;
}

/** A pod as policies see it: only pod-network pods (hostNetwork pods count as their node). */
export interface PolicyPod {
  readonly namespace: string;
  readonly name?: string;
  readonly labels: Labels;
  /** Its addresses; absent when unknown (aggregated records): then no ipBlock matches it. */
  readonly ips?: readonly string[];
  /** Named ports resolve against these. */
  readonly ports?: readonly ContainerPort[];
  /** Its node's name: traffic between a pod and its own node is always allowed. */
  readonly nodeName?: string;
}

export interface PolicyNode {
  readonly name: string;
  readonly ips: readonly string[];
}

/** Everything an evaluation reads. */
export interface ClusterState {
  readonly namespaces: readonly PolicyNamespace[];
  readonly pods: readonly PolicyPod[];
  readonly nodes?: readonly PolicyNode[];
  readonly policies: readonly NetworkPolicy[];
}
