/** The flow table's public surface: the table, its options, stats and snapshot types. */
export { AggregationKind } from './aggregation.js';
export { type BaselineSnapshot, connectionKey } from './baseline-snapshot.js';
export {
  FlowTable,
  type FlowTableOptions,
  type FlowTableStats,
} from './flow-table.js';
